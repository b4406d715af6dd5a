package qemuargs

// The walk over a command line: which words are options, which their
// values, as QEMU reads them.

// noArg lists the QEMU options that take no argument (HAS_ARG 0 in
// qemu-options.hx), old and new; every other option takes one. QEMU knows
// this from its own table, and so must we to tell options from values.
var noArg = map[string]bool{
	"h": true, "help": true, "version": true, "S": true, "s": true,
	"snapshot": true, "nographic": true, "portrait": true,
	"full-screen": true, "no-frame": true, "alt-grab": true,
	"ctrl-grab": true, "no-quit": true, "sdl": true, "curses": true,
	"win2k-hack": true, "rtc-td-hack": true, "no-fd-bootchk": true,
	"no-acpi": true, "no-hpet": true, "enable-kvm": true, "no-kvm": true,
	"no-kvm-irqchip": true, "no-kvm-pit": true,
	"no-kvm-pit-reinjection": true, "xen-create": true,
	"xen-attach": true, "xen-domid-restrict": true, "no-reboot": true,
	"no-shutdown": true, "daemonize": true, "nodefaults": true,
	"nodefconfig": true, "no-user-config": true,
	"only-migratable": true, "preconfig": true, "enable-fips": true,
	"enable-sync-profile": true, "singlestep": true, "usb": true,
	"mem-prealloc": true, "audio-help": true, "semihosting": true,
	"async-teardown": true, "perfmap": true, "jitdump": true,
	"old-param": true, "localtime": true, "std-vga": true,
}

// optName returns the option a word names ("-m" and "--m" both give "m"),
// or "" for a word that is not an option.
func optName(w string) string {
	if len(w) < 2 || w[0] != '-' {
		return ""
	}
	if w[1] == '-' {
		return w[2:]
	}
	return w[1:]
}

// values calls fn with the value of every option named one of names, in
// order.
func values(args []string, fn func(name, val string), names ...string) {
	for i := 0; i < len(args); i++ {
		o := optName(args[i])
		if o == "" || noArg[o] || i+1 == len(args) {
			continue
		}
		i++
		for _, n := range names {
			if o == n {
				fn(o, args[i])
			}
		}
	}
}

// vmUUID is the VM's UUID (the last -uuid), "" for none.
func vmUUID(args []string) string {
	uuid := ""
	values(args, func(_, val string) { uuid = val }, "uuid")
	return uuid
}

// vmName finds the VM's name (the last -name, as QEMU takes it) before the
// rewrite, as tap names derive from it wherever -name comes.
func vmName(args []string) string {
	name := DefaultName
	values(args, func(_, val string) {
		if v, _ := parseOpts(val, "guest").get("guest"); v != "" {
			name = v
		}
	}, "name")
	return name
}
