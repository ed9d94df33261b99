#!/usr/bin/env bash
# `make test-image`: the image built by `make image`, run privileged on this
# machine: `rsagent probe` must pick a hook set, the image must hold no
# compiler, and `rsagent run` with the bundled default policy must raise an
# alert for /etc/shadow read by `cat` on the host (rule credential_file_read).
set -euo pipefail
cd "$(dirname "$0")/../.."
VPY=${VPY:-.venv/bin/python}
VERSION=$("$VPY" -c 'import importlib.metadata as m; print(m.version("rsagent"))')
IMAGE=${IMAGE:-localhost/rsagent:$VERSION}
# runc: crun refuses hybrid cgroup hierarchies (this VM has one); cgroupfs
# and a file event log: no systemd needed.
PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs --events-backend=file)
# podman's default limits (1048576 files...) can exceed the host's hard ones
PODMAN_RUN=(run --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
# What the agent needs from the host (the DaemonSet mounts the same).
RUN=("${PODMAN[@]}" "${PODMAN_RUN[@]}" --privileged --pid=host --network=host
     -v /sys/kernel/tracing:/sys/kernel/tracing -v /sys/fs/bpf:/sys/fs/bpf
     -v /sys/kernel/security:/sys/kernel/security:ro)
work=$(mktemp -d /tmp/rsagent-image-test.XXXXXX)
chmod 0700 "$work"
name=rsagent-image-test-$$
cleanup() { "${PODMAN[@]}" rm -f -t 5 "$name" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "test-image: FAIL: $*" >&2; exit 1; }

echo "test-image: no compiler in the image"
if "${PODMAN[@]}" "${PODMAN_RUN[@]}" --rm --entrypoint /bin/sh "$IMAGE" -c 'command -v cc gcc clang clang-19 tcc' ; then
    fail "a compiler is in the image"
fi

echo "test-image: rsagent probe"
"${RUN[@]}" --rm "$IMAGE" probe > "$work/probe.txt" || { rc=$?; cat "$work/probe.txt"; fail "rsagent probe exited $rc"; }
grep -q "^hook set      tracepoint" "$work/probe.txt" || { cat "$work/probe.txt"; fail "no tracepoint hook set"; }

echo "test-image: rsagent run (default policy) and /etc/shadow read on the host"
"${RUN[@]}" -d --name "$name" -v "$work:/out" "$IMAGE" \
    run -v --output jsonl:/out/alerts.jsonl --ready-file /out/ready --spool-dir /out/spool >/dev/null
for _ in $(seq 600); do [ -e "$work/ready" ] && break; sleep 0.1; done
[ -e "$work/ready" ] || { "${PODMAN[@]}" logs "$name"; fail "the agent did not become ready"; }
cat /etc/shadow > /dev/null
for _ in $(seq 100); do grep -q '"rule_id":"credential_file_read"' "$work/alerts.jsonl" 2>/dev/null && break; sleep 0.1; done
"${PODMAN[@]}" stop -t 30 "$name" >/dev/null
"${PODMAN[@]}" logs "$name" > "$work/agent.log" 2>&1 || true
grep -q '"rule_id":"credential_file_read"' "$work/alerts.jsonl" || { cat "$work/agent.log"; fail "no credential_file_read alert"; }
grep '"rule_id":"credential_file_read"' "$work/alerts.jsonl" | grep -q '"path":"/etc/shadow"' || fail "the alert does not name /etc/shadow"
echo "test-image: ok ($IMAGE: probe, no compiler, alert from the default policy)"
