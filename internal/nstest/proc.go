package nstest

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// LockedKB returns VmLck of process pid, the memory it holds locked, in kB.
func LockedKB(pid int) (int, error) {
	p := fmt.Sprintf("/proc/%d/status", pid)
	f, err := os.Open(p)
	if err != nil {
		return 0, fmt.Errorf("reading locked memory of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmLck:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				return 0, fmt.Errorf("%s: VmLck: %w", p, err)
			}
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	return 0, fmt.Errorf("%s: no VmLck line", p)
}
