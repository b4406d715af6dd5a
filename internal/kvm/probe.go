package kvm

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl numbers and values of <linux/kvm.h> (x86).
const (
	kvmGetAPIVersion       = 0xAE00
	kvmCreateVM            = 0xAE01
	kvmGetVCPUMmapSize     = 0xAE04
	kvmCreateVCPU          = 0xAE41
	kvmSetUserMemoryRegion = 0x4020AE46
	kvmRun                 = 0xAE80
	kvmSetRegs             = 0x4090AE82
	kvmGetSregs            = 0x8138AE83
	kvmSetSregs            = 0x4138AE84

	kvmAPIVersion = 12
	kvmExitHLT    = 5

	sregsSize = 312 // struct kvm_sregs
)

// userMemoryRegion is struct kvm_userspace_memory_region.
type userMemoryRegion struct {
	Slot, Flags                         uint32
	GuestPhysAddr, MemorySize, UserAddr uint64
}

func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	if e != 0 {
		return r, e
	}
	return r, nil
}

// runHLT creates a VM with one page of memory holding hlt, one vCPU in
// real mode at address 0, and runs it: a usable KVM exits with
// KVM_EXIT_HLT at once.
func runHLT(dev string, timeout time.Duration) error {
	if runtime.GOARCH != "amd64" {
		return nil
	}
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		return &Problem{fmt.Sprintf("%s is not open to uid %d (add the user to the group that owns it, usually kvm)", dev, os.Geteuid())}
	}
	if err != nil {
		return &Problem{fmt.Sprintf("opening %s: %v", dev, err)}
	}
	defer unix.Close(fd)
	fail := func(step string, err error) error {
		return &Problem{fmt.Sprintf("%s: %s: %v", dev, step, err)}
	}
	if v, err := ioctl(fd, kvmGetAPIVersion, 0); err != nil || v != kvmAPIVersion {
		return fail("KVM_GET_API_VERSION", fmt.Errorf("version %d, error %v", v, err))
	}
	vmfd, err := ioctl(fd, kvmCreateVM, 0)
	if err != nil {
		return fail("KVM_CREATE_VM", err)
	}
	vm := int(vmfd)
	defer unix.Close(vm)
	mem, err := unix.Mmap(-1, 0, 0x1000, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("KVM test: %w", err)
	}
	defer unix.Munmap(mem)
	mem[0] = 0xf4 // hlt
	region := userMemoryRegion{MemorySize: 0x1000, UserAddr: uint64(uintptr(unsafe.Pointer(&mem[0])))}
	if _, err := ioctl(vm, kvmSetUserMemoryRegion, uintptr(unsafe.Pointer(&region))); err != nil {
		return fail("KVM_SET_USER_MEMORY_REGION", err)
	}
	cpufd, err := ioctl(vm, kvmCreateVCPU, 0)
	if err != nil {
		return fail("KVM_CREATE_VCPU", err)
	}
	vcpu := int(cpufd)
	defer unix.Close(vcpu)
	size, err := ioctl(fd, kvmGetVCPUMmapSize, 0)
	if err != nil {
		return fail("KVM_GET_VCPU_MMAP_SIZE", err)
	}
	run, err := unix.Mmap(vcpu, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap of the vCPU", err)
	}
	defer unix.Munmap(run)
	var sregs [sregsSize]byte
	if _, err := ioctl(vcpu, kvmGetSregs, uintptr(unsafe.Pointer(&sregs[0]))); err != nil {
		return fail("KVM_GET_SREGS", err)
	}
	clear(sregs[0:8])   // cs.base
	clear(sregs[12:14]) // cs.selector
	if _, err := ioctl(vcpu, kvmSetSregs, uintptr(unsafe.Pointer(&sregs[0]))); err != nil {
		return fail("KVM_SET_SREGS", err)
	}
	var regs [18]uint64 // struct kvm_regs: rip is 16, rflags 17
	regs[17] = 2
	if _, err := ioctl(vcpu, kvmSetRegs, uintptr(unsafe.Pointer(&regs[0]))); err != nil {
		return fail("KVM_SET_REGS", err)
	}

	done := make(chan error, 1)
	tidc := make(chan int, 1)
	go func() {
		// The thread stays locked (and is dropped) if the run never
		// returns: it is in KVM's hands.
		runtime.LockOSThread()
		tidc <- unix.Gettid()
		_, err := ioctl(vcpu, kvmRun, 0)
		done <- err
	}()
	tid := <-tidc
	select {
	case err := <-done:
		if err != nil {
			return fail("KVM_RUN", err)
		}
	case <-time.After(timeout):
		// A signal makes KVM_RUN return EINTR.
		unix.Tgkill(os.Getpid(), tid, unix.SIGURG)
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		return &Problem{fmt.Sprintf("%s: a test vCPU did not finish one instruction within %s (nested virtualization not working?)", dev, timeout)}
	}
	if reason := *(*uint32)(unsafe.Pointer(&run[8])); reason != kvmExitHLT {
		return &Problem{fmt.Sprintf("%s: a test vCPU stopped with exit reason %d instead of hlt (%d)", dev, reason, kvmExitHLT)}
	}
	return nil
}
