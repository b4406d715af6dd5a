# qemu-tap-helpers: make help lists the targets.

PREFIX      ?= /usr/local
DESTDIR     ?=
LIBEXECDIR  ?= $(PREFIX)/libexec/qemu-tap-helpers
BINDIR      ?= $(PREFIX)/bin
SYSCONFDIR  ?= /etc
# INSTALL_ETC_LINKS=1 makes /etc/qemu-ifup and /etc/qemu-ifdown point at the
# helpers, keeping an existing file as .orig.
INSTALL_ETC_LINKS ?= 0

GO       ?= go
# One version for binaries and packages: packaging/version (git describe, made valid for dpkg and rpm).
VERSION  ?= $(shell packaging/version 2>/dev/null || echo devel)
PKG      := github.com/qemu-tap-helpers/qemu-tap-helpers
LDFLAGS  := -s -w -X $(PKG)/internal/version.Version=$(VERSION)
GOBUILD  := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
CMDS     := qemu-ifup qemu-ifdown qemu-launch qemu-bridge-helper
BINS     := $(addprefix bin/,$(CMDS))

.PHONY: all build test unit lint install uninstall clean help bench deps-bench guest demo deps-test rt-bench deps-rt-bench

all: build

build: $(BINS) ## build static binaries into bin/

bin/%: FORCE
	$(GOBUILD) -o $@ ./cmd/$*

FORCE:

lint: ## gofmt, go vet and staticcheck (pinned in tools/go.mod)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	@echo "staticcheck ./... (its first run downloads and builds it: about a minute)"
	@$(GO) tool -modfile=tools/go.mod staticcheck ./...

unit: ## unit tests only (no root needed)
	$(GO) test -race -short ./...

# make test prints a line per test and per package as each ends (the
# end-to-end tests take minutes), a failed test's output, and the total
# time; GOTESTFLAGS=-v prints go test -v's whole output instead.
test: deps-test lint build ## all tests (-race, about 8 minutes on 2 cores); as root on Debian/Ubuntu it installs what they need first
	@$(GO) build -o .cache/test-progress ./test/progress
	@echo "go test -race ./... (one line per test as it ends)"
	@.cache/test-progress $(if $(filter -v -test.v,$(GOTESTFLAGS)),-v) -- $(GO) test -race -count=1 -json $(GOTESTFLAGS) ./...

deps-test:
	@./scripts/ensure-deps test
	@# The e2e tests' guest; without root they skip, so a failure here need not stop make.
	@./test/guest/build >/dev/null || [ "$$(id -u)" != 0 ]

guest: ## build a guest to log into (Debian kernel + busybox initramfs) into .cache/guest
	@d=$$(./test/guest/build login) && echo "guest: $$d/vmlinuz and $$d/login.gz; README.md, 3. The first VM, boots them"

demo: ## as root: boot a guest on a throwaway virbr0 and watch the helpers work (NIC=virtio-net-pci)
	@./scripts/demo $(NIC)

# make bench: the helpers against the shell scripts and an empty Go program;
# root only, never part of make test. BENCHFLAGS=-rounds=50 for a quick run.
bench: deps-bench build ## measure against the shell scripts (root); writes docs/benchmarks.md
	$(GOBUILD) -o bin/bench-empty ./bench/empty
	$(GOBUILD) -o bin/bench-imports ./bench/imports
	$(GO) run ./bench -bin bin -empty bin/bench-empty -imports bin/bench-imports -doc docs/benchmarks.md -plot docs/benchmarks-scale.png $(BENCHFLAGS)

deps-bench:
	@./scripts/ensure-deps bench

# make rt-bench: QEMU's threads under host load, the seed's taskset against
# qemu-launch's placement (several minutes); root only, never part of make
# test. RTBENCHFLAGS="-reps 1 -duration 10s" for a quick run.
rt-bench: deps-rt-bench build ## QEMU threads' run-queue delay, taskset against qemu-launch (root); writes docs/benchmarks.md
	guest=$$(./test/guest/build rt) && \
	  $(GO) run ./bench/rt -launcher bin/qemu-launch -guest "$$guest" -doc docs/benchmarks.md -plot docs/benchmarks-rt.png $(RTBENCHFLAGS)

deps-rt-bench:
	@./scripts/ensure-deps rt-bench

install: build ## install into $(DESTDIR)$(PREFIX) (INSTALL_ETC_LINKS=1 for /etc/qemu-if{up,down})
	install -d $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(BINS) $(DESTDIR)$(LIBEXECDIR)/
	@# qemu-launch finds the helpers next to its resolved executable.
	install -d $(DESTDIR)$(BINDIR)
	ln -sfn $(LIBEXECDIR)/qemu-launch $(DESTDIR)$(BINDIR)/qemu-launch
	@if [ "$(INSTALL_ETC_LINKS)" = 1 ]; then \
	  install -d $(DESTDIR)$(SYSCONFDIR); \
	  for f in qemu-ifup qemu-ifdown; do \
	    t=$(DESTDIR)$(SYSCONFDIR)/$$f; \
	    if [ -e "$$t" ] && [ ! -L "$$t" ] && [ ! -e "$$t.orig" ]; then mv "$$t" "$$t.orig"; echo "kept $$t as $$t.orig"; fi; \
	    ln -sfn $(LIBEXECDIR)/$$f "$$t"; echo "$$t -> $(LIBEXECDIR)/$$f"; \
	  done; \
	fi

uninstall: ## remove what install put in place, restoring /etc/qemu-if{up,down}.orig
	rm -f $(addprefix $(DESTDIR)$(LIBEXECDIR)/,$(CMDS)) $(DESTDIR)$(BINDIR)/qemu-launch
	-rmdir $(DESTDIR)$(LIBEXECDIR) 2>/dev/null
	@for f in qemu-ifup qemu-ifdown; do \
	  t=$(DESTDIR)$(SYSCONFDIR)/$$f; \
	  if [ -L "$$t" ] && [ "$$(readlink "$$t")" = "$(LIBEXECDIR)/$$f" ]; then rm -f "$$t"; \
	    if [ -e "$$t.orig" ]; then mv "$$t.orig" "$$t"; fi; fi; \
	done

# Packages: packaging/README.md says what goes where.
PKG_ARCHES ?= amd64 arm64
DIST       ?= dist
.PHONY: package
package: ## build the .deb and .rpm into dist/ (PKG_ARCHES="amd64 arm64")
	@./scripts/ensure-deps package
	GO='$(GO)' DIST='$(DIST)' ./packaging/build $(PKG_ARCHES)

clean: ## remove build output
	rm -rf bin dist

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12
