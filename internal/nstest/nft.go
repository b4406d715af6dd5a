package nstest

import (
	"testing"

	"github.com/google/nftables"
)

// NftChains reads, through nftables in ns, the chains of the bridge-family
// table called table, each with its rules.
func NftChains(t *testing.T, ns *NS, table string) map[string][]*nftables.Rule {
	t.Helper()
	fd, err := ns.Conn.NetNS()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		t.Fatal(err)
	}
	chains, err := nc.ListChainsOfTableFamily(nftables.TableFamilyBridge)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*nftables.Rule{}
	for _, ch := range chains {
		if ch.Table.Name != table {
			continue
		}
		rules, err := nc.GetRules(ch.Table, ch)
		if err != nil {
			t.Fatal(err)
		}
		out[ch.Name] = rules
	}
	return out
}
