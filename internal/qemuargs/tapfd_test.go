package qemuargs

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRewriteTapFd: for an unprivileged QEMU the launcher opens the taps
// and QEMU gets fd=N in their place, without the options QEMU refuses
// beside fd=.
func TestRewriteTapFd(t *testing.T) {
	o := Options{IfUp: "/h/qemu-ifup", IfDown: "/h/qemu-ifdown", IsIfUp: func(s string) bool { return s == "/etc/qemu-ifup" }, TapFd: 4}
	res, err := Rewrite([]string{"-name", "vm",
		"-netdev", "tap,id=a",
		"-netdev", "tap,id=b,ifname=tapb,script=/etc/qemu-ifup,downscript=/etc/qemu-ifdown,vhost=on",
		"-nic", "tap,id=c,vnet_hdr=off,model=e1000",
		"-netdev", "tap,id=mq,queues=3,vhost=on",
		"-netdev", "tap,id=d,fd=20",
		"-netdev", "user,id=u"}, o)
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{"-name", "vm",
		"-netdev", "tap,id=a,fd=4",
		"-netdev", "tap,id=b,vhost=on,fd=5",
		"-nic", "tap,id=c,model=e1000,fd=6,mac=" + GuestMAC("vm", "c").String(),
		"-netdev", "tap,id=mq,vhost=on,fds=7:8:9",
		"-netdev", "tap,id=d,fd=20",
		"-netdev", "user,id=u"}
	if diff := cmp.Diff(wantArgs, res.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	type tapFD struct {
		Ifname     string
		FD, Queues int
		VnetHdr    bool
	}
	var got []tapFD
	for _, tp := range res.Taps {
		got = append(got, tapFD{tp.Ifname, tp.FD, tp.Queues, tp.VnetHdr})
	}
	want := []tapFD{{TapName("vm", "a"), 4, 1, true}, {"tapb", 5, 1, true}, {TapName("vm", "c"), 6, 1, false}, {TapName("vm", "mq"), 7, 3, true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("taps (-want +got):\n%s", diff)
	}

	for _, tt := range []struct{ arg, want string }{
		{"tap,id=x,queues=0", "netdev x: queues=0 is not a number from 1 to 256"},
		{"tap,id=x,script=/usr/local/bin/my-ifup", "netdev x runs its own script=/usr/local/bin/my-ifup, which would run without privileges as QEMU's user"},
	} {
		_, err := Rewrite([]string{"-netdev", tt.arg}, o)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Rewrite(-netdev %s) = %v, want %q", tt.arg, err, tt.want)
		}
	}
}
