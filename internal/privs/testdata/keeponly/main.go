// Command keeponly calls privs.KeepOnly(CAP_NET_ADMIN) and prints the
// capability sets of each of its threads, for TestKeepOnly. It is built
// without cgo, as the helpers are (the race detector needs cgo, which
// cannot change capabilities on every thread).
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qemu-tap-helpers/qemu-tap-helpers/internal/privs"
)

func main() {
	if err := privs.KeepOnly(unix.CAP_NET_ADMIN); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	for _, task := range tasks {
		data, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue // a thread that ended
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "Cap") && !strings.HasPrefix(line, "CapBnd") {
				fmt.Println(line)
			}
		}
	}
}
