# Two commands for a new user (as root on Debian 12): `make run`, `make test`.
# `make setup` is their shared first step: system packages, kernel mounts,
# the virtualenv .venv with pinned dependencies, and the BPF objects.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= /usr/bin/python3
VENV := .venv
VPY := $(VENV)/bin/python
ARCH := x86_64
CLANG ?= clang-19
BPFTOOL ?= bpftool
BUILD := build

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror \
	-I ebpf/include -I vmlinux/$(ARCH) -I $(BUILD)/gen
BPF_SRC := $(wildcard ebpf/*.bpf.c)
BPF_HDR := $(wildcard ebpf/include/*.h ebpf/include/*/*.h)

.PHONY: setup system venv build run trace lint test test-slow test-detection test-kernels image test-image bench vmlinux kheaders generate clean distclean

setup: system venv build

system:
	@ci/setup-system.sh

# The venv is rebuilt when the project's metadata changes.
venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml setup.py agent/libbpf/_cdef.py agent/libbpf/_build.py
	@test -x $(VPY) || { echo "setup: creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "setup: installing Python dependencies into $(VENV)"
	@# (this machine's pip config names local mirrors that may be absent: drop those warnings)
	@$(VPY) -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
	@touch $@

build: venv
	@$(VPY) -m agent.build --build-dir $(BUILD) --quiet

run: setup
	$(VENV)/bin/rsagent run

trace: setup
	$(VENV)/bin/rsagent trace

# ruff and mypy over the whole tree (ci/lint.sh)
lint: venv
	@ci/lint.sh

test: setup lint
	$(VPY) -m pytest -q -m "not slow"

# (the slow tests include the scenario suite's full part: its packages first)
test-slow: setup
	@tests/detection/install-packages.sh $(DETECTION_PACKAGES)
	$(VPY) -m pytest -q -m slow

# The attack-scenario suite (tests/detection, docs/detection.md): every scenario
# and the benign workload against the default policy, after installing the
# daemons and tools the scenarios use (their services are not started; the
# suite runs its own instances on 127.0.0.1). `make test` runs its quick part.
DETECTION_PACKAGES := openssh-server cron lighttpd netcat-openbsd nmap at sudo iptables curl strace gdb \
	e2fsprogs libcap2-bin gcc git
test-detection: setup
	@tests/detection/install-packages.sh $(DETECTION_PACKAGES)
	$(VPY) -m pytest -q tests/detection

# The kernel matrix: Debian 12's 6.1 and 6.12 kernels booted under QEMU
# (virtme-ng) plus the running kernel; minutes, not part of `make test`.
# Kernel packages are cached in build/kernels/. See docs/kernels.md.
test-kernels: setup
	@$(VPY) -m pip install -q --disable-pip-version-check -e '.[test,kernels]' 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
	$(VPY) tests/kernels/matrix.py $(if $(KERNELS),$(foreach k,$(KERNELS),--kernel $(k)))

# The container image (deploy/image/build.sh): a Debian rootfs made by
# mmdebstrap, the agent installed from wheels, prebuilt objects and the
# default policy, no compiler; imported into podman as rsagent:VERSION.
image: setup
	@ci/setup-system.sh image
	deploy/image/build.sh

# Runs the image privileged here: probe, no compiler, an alert from `run`
# (loads BPF: run it as `flock /tmp/rsagent-bpf.lock make test-image`).
test-image: image
	deploy/image/test.sh

bench: setup
	$(VPY) -m bench

# Regenerates the committed vmlinux.h from the running kernel's BTF.
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/$(ARCH)/vmlinux.h.tmp
	mv vmlinux/$(ARCH)/vmlinux.h.tmp vmlinux/$(ARCH)/vmlinux.h

# Syscall numbers and kernel constants from the kernel's own headers (Debian's
# linux-libc-dev and linux-headers packages, unstable by default): rewrites
# the committed vmlinux/x86_64/kconsts.json. Then `make generate`.
kheaders: venv
	$(VPY) ci/kheaders.py $(if $(SUITE),--suite $(SUITE))

# Files generated from the event-type table (codegen/eventtypes.py): the
# generated block of events.h, syscall_table.h, hooks/exits.h, docs/fields.md.
generate: venv
	$(VPY) -m codegen.tablegen
	$(VPY) -m codegen.fieldsdoc

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf $(VENV) *.egg-info
