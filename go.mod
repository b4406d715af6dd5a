module github.com/qemu-tap-helpers/qemu-tap-helpers

go 1.26.8

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/vishvananda/netlink v1.3.1
	github.com/vishvananda/netns v0.0.5
	golang.org/x/sys v0.50.0
)

require github.com/google/go-cmp v0.7.0
