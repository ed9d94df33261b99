#!/usr/bin/env bash
# Installs the Debian packages the build and the agent need, and mounts the
# kernel filesystems the probes need. Idempotent; silent when nothing is to do.
#   ci/setup-system.sh         the build, the agent and `make test`
#   ci/setup-system.sh image   also what `make image` / `make test-image` need
set -euo pipefail

PKGS=(clang-19 llvm-19 libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
      python3-venv python3-dev libffi-dev gcc make
      # servers the sink and deployment tests start (tests/sinks, tests/deploy);
      # their packaged services stay off: the tests run their own instances
      rsyslog nats-server prometheus openssl iproute2 util-linux systemd
      # the DNS server tests/net starts (dnsmasq-base: the binary, no service)
      dnsmasq-base
      # the headless browser the replay report is rendered in (tests/agent/test_report.py)
      chromium)
if [ "${1:-}" = image ]; then
    PKGS+=(mmdebstrap podman runc)
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: must run as root (installs packages, mounts tracefs/bpffs, loads BPF)" >&2
    exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Packaged daemons started by their installation (where an init runs them):
# the tests start their own instances on their own ports.
for svc in rsyslog nats-server prometheus; do
    if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
        systemctl disable -q --now "$svc" 2>/dev/null || true
    fi
done

mountpoint -q /sys/kernel/tracing || { echo "setup: mounting tracefs"; mount -t tracefs tracefs /sys/kernel/tracing; }
mountpoint -q /sys/fs/bpf || { echo "setup: mounting bpffs"; mount -t bpf bpf /sys/fs/bpf; }
mountpoint -q /sys/kernel/security || { echo "setup: mounting securityfs"; mount -t securityfs securityfs /sys/kernel/security 2>/dev/null || true; }
if [ ! -r /sys/kernel/btf/vmlinux ]; then
    echo "setup: warning: /sys/kernel/btf/vmlinux is missing: this kernel has no BTF; the CO-RE objects cannot be loaded here (see README, Troubleshooting)" >&2
fi
