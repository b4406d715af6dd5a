package vmconf

import "testing"

// TestUser: User= names QEMU's user for qemu-launch; it is not part of
// QEMU's command line.
func TestUser(t *testing.T) {
	vm, err := Parse("t.conf", []byte("[VM]\nUser=qemu-user\nMemory=256M\n"))
	if err != nil {
		t.Fatal(err)
	}
	if vm.User != "qemu-user" {
		t.Errorf("User = %q, want qemu-user", vm.User)
	}
	for _, a := range vm.Args() {
		if a == "qemu-user" {
			t.Errorf("the user shows in QEMU's arguments: %q", vm.Args())
		}
	}
	if _, err := Parse("t.conf", []byte("[VM]\nUser=a b\n")); err == nil {
		t.Error("User=a b parsed, want an error")
	}
}
