"""The benign workload: what developers, administrators and daemons do all
day. The default policy must raise nothing for any of it.

`workload(ctx)` is the cheap part (in `make test`): a small local .deb
installed and removed with dpkg, `python -m compileall`, git init/commit/
clone, a C program built and run in a project directory under /tmp, tar,
cp -r, ps, systemctl status, sed -i in the project, `bpftool prog show`, and
everyday kernel and process calls (EVERYDAY_CALLS). `daemons(ctx)` is the
rest (`make test-detection`): strace and gdb on a program the developer
starts, Debian's sshd accepting a key login, cron running a job, lighttpd
serving a page and a CGI.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from detection_context import Context, ScenarioError
from detection_daemons import lighttpd, require, sshd

PACKAGE = "rsagent-detection-benign"

HELLO_C = r"""
#include <stdio.h>
int main(int argc, char **argv) { printf("hello from %s\n", argv[0]); return 0; }
"""


def _package(ctx: Context) -> Path:
    """A package as Debian ships them: a program, a conffile, a systemd unit, a
    cron.d job, a profile.d script, a system user created and removed by its
    maintainer scripts, a file capability set by postinst (as iputils-ping does)."""
    root = ctx.tmp / "pkg"
    files = {
        "DEBIAN/control": f"Package: {PACKAGE}\nVersion: 1.0\nArchitecture: all\n"
                          "Maintainer: rsagent <rsagent@invalid>\nDescription: benign workload of the detection suite\n",
        "DEBIAN/conffiles": f"/etc/{PACKAGE}.conf\n",
        "DEBIAN/postinst": "#!/bin/sh\nset -e\n"
                           f"if ! getent passwd _{PACKAGE[:20]} >/dev/null; then useradd --system --no-create-home "
                           f"--shell /usr/sbin/nologin _{PACKAGE[:20]}; fi\n"
                           f"if command -v setcap >/dev/null; then setcap cap_net_bind_service+ep /usr/bin/{PACKAGE}-helper; fi\n",
        "DEBIAN/postrm": "#!/bin/sh\nset -e\n"
                         f"if [ \"$1\" = purge ]; then userdel _{PACKAGE[:20]} 2>/dev/null || true; fi\n",
        f"usr/bin/{PACKAGE}": "#!/bin/sh\necho benign\n",
        f"usr/bin/{PACKAGE}-helper": "#!/bin/sh\nexit 0\n",
        f"etc/{PACKAGE}.conf": "setting = 1\n",
        f"usr/lib/systemd/system/{PACKAGE}.service": f"[Service]\nExecStart=/usr/bin/{PACKAGE}\n",
        f"etc/cron.d/{PACKAGE}": f"# 0 4 * * * root /usr/bin/{PACKAGE}\n",
        f"etc/profile.d/{PACKAGE}.sh": "export RSAGENT_DETECTION_BENIGN=1\n",
    }
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(0o755 if rel.startswith(("DEBIAN/post", "usr/bin/")) else 0o644)
    deb = ctx.tmp / f"{PACKAGE}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True, capture_output=True)
    return deb


def _dpkg(ctx: Context, args: str) -> None:
    """dpkg, retried while another dpkg or apt holds the lock."""
    deadline = time.monotonic() + 300
    while True:
        result = ctx.sh(f"dpkg {args}", check=False)
        if result.returncode == 0:
            return
        if "lock" not in result.stderr or time.monotonic() > deadline:
            raise ScenarioError(f"dpkg {args} exited {result.returncode}: {result.stderr.strip()}")
        time.sleep(2)


# What programs do with the kernel and process calls every day, none of which the default
# policy reports: a debugger tracing the program it started (breakpoints are PTRACE_POKETEXT),
# a process naming itself, a memfd used for data, a file spliced into a fresh pipe, a mapping
# made read-only (RELRO), BPF programs listed.
EVERYDAY_CALLS = """
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.syscall.restype = ctypes.c_long
with open("/proc/self/maps") as maps:             # the child's code is where ours is
    code = next(int(line.split("-")[0], 16) for line in maps if " r-xp " in line)
pid = os.fork()
if pid == 0:
    libc.ptrace(0, 0, None, None)                 # PTRACE_TRACEME
    os.kill(os.getpid(), signal.SIGSTOP)
    os._exit(0)
os.waitpid(pid, os.WUNTRACED)
word = libc.ptrace(1, pid, code, None)            # PTRACE_PEEKTEXT
if libc.ptrace(4, pid, code, ctypes.c_void_p(word & (2**64 - 1))) != 0:  # PTRACE_POKETEXT: a breakpoint
    raise SystemExit(f"poke: errno {ctypes.get_errno()}")
libc.ptrace(7, pid, None, None)                   # PTRACE_CONT
os.waitpid(pid, 0)
libc.prctl(15, b"worker-pool", 0, 0, 0)           # PR_SET_NAME
fd = os.memfd_create("buffer")
os.write(fd, b"data")
os.close(fd)
r, w = os.pipe()
src = os.open("/etc/passwd", os.O_RDONLY)
off = ctypes.c_longlong(0)
if libc.syscall(ctypes.c_long(275), ctypes.c_long(src), ctypes.byref(off), ctypes.c_long(w), None,
                ctypes.c_long(64), ctypes.c_long(0)) <= 0:
    raise SystemExit(f"splice: errno {ctypes.get_errno()}")
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
page = libc.mmap(None, 4096, 3, 0x22, -1, 0)      # PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS
libc.mprotect(ctypes.c_void_p(page), 4096, 1)     # PROT_READ
print("everyday calls done")
"""


def workload(ctx: Context) -> None:
    require("gcc", "git", "dpkg-deb", "python3", "tar", "bpftool")
    deb = _package(ctx)
    ctx.preserve(f"/etc/{PACKAGE}.conf")
    _dpkg(ctx, f"-i {deb}")
    try:
        if ctx.sh(f"{PACKAGE}").stdout.strip() != "benign":
            raise ScenarioError("the installed program did not run")
    finally:
        _dpkg(ctx, f"--purge {PACKAGE}")

    project = ctx.tmp / "project"
    env = {**os.environ, "HOME": str(ctx.tmp), "GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@invalid",
           "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@invalid"}
    project.mkdir()
    (project / "hello.c").write_text(HELLO_C)
    (project / "pkg").mkdir()
    (project / "pkg" / "__init__.py").write_text("VERSION = '1.0'\n")
    (project / "pkg" / "util.py").write_text("def double(x):\n    return 2 * x\n")
    (project / "settings.ini").write_text("debug = false\n")
    script = f"""
set -e
cd {project}
git init -q . && git add -A && git commit -qm initial
gcc -O2 -o hello hello.c && ./hello
cc -c hello.c -o hello.o && cc -o hello2 hello.o && ./hello2
python3 -m compileall -q pkg
sed -i 's/false/true/' settings.ini
git commit -qam 'enable debug'
git clone -q {project} {ctx.tmp}/clone
cd {ctx.tmp}/clone && echo '# notes' >> README && git add README && git commit -qm notes && git log --oneline > /dev/null
cd {ctx.tmp}
tar czf project.tgz project && mkdir untar && tar xzf project.tgz -C untar
cp -r project project-copy && cp -a project project-archive
ps aux > /dev/null && ps -ef --forest > /dev/null
systemctl status > /dev/null 2>&1 || true
ls -la /etc > /dev/null && cat /etc/os-release > /dev/null && id > /dev/null
bpftool prog show > /dev/null
/usr/bin/python3 {ctx.tmp}/everyday.py
"""
    (ctx.tmp / "everyday.py").write_text(EVERYDAY_CALLS)
    out = ctx.sh(script, env=env).stdout
    if "everyday calls done" not in out:
        raise ScenarioError(f"the everyday calls did not run: {out!r}")
    if out.count("hello from") != 2:
        raise ScenarioError(f"the C programs did not run: {out!r}")


def daemons(ctx: Context) -> None:
    require("/usr/sbin/sshd", "/usr/sbin/cron", "/usr/sbin/lighttpd", "strace", "gdb", "gcc")
    # a developer's debugging: strace and gdb on a program they start (gdb's breakpoints)
    (ctx.tmp / "hello.c").write_text(HELLO_C)
    out = ctx.sh(f"gcc -g -o {ctx.tmp}/hello {ctx.tmp}/hello.c && strace -f -o /dev/null {ctx.tmp}/hello && "
                 f"gdb -q -batch -ex 'break main' -ex run -ex continue {ctx.tmp}/hello").stdout
    # the program's lines, not gdb's listing of the source line it stopped at (printf("hello from %s\n"...))
    if out.count(f"hello from {ctx.tmp}/hello\n") != 2:
        raise ScenarioError(f"strace and gdb did not run the program: {out!r}")

    # sshd: a key login running ordinary commands
    server = sshd(ctx)
    out = server.ssh(ctx, "id -u; ls / > /dev/null; uname -a; cat /etc/hostname")
    if not out.startswith("0"):
        raise ScenarioError(f"the ssh login did not run the commands: {out!r}")

    # cron: a job at start-up (@reboot jobs run when cron starts on a fresh boot marker)
    done = ctx.tmp / "cron-ran"
    job = ctx.remove_after(f"/etc/cron.d/rsagent-detection-benign-{ctx.tag}")
    job.write_text(f"@reboot root date > {done}\n")
    marker = Path("/run/crond.reboot")
    if marker.exists():
        ctx.preserve(marker)
        marker.unlink()
    if Path("/run/crond.pid").exists():
        raise ScenarioError("a cron daemon is already running; the suite starts its own")
    ctx.remove_after("/run/crond.pid")
    ctx.spawn(["/usr/sbin/cron", "-f"])
    deadline = time.monotonic() + 120
    while not done.exists():
        if time.monotonic() > deadline:
            raise ScenarioError("cron did not run its @reboot job within 120 s")
        time.sleep(0.2)

    # lighttpd: a static page and a CGI
    web = lighttpd(ctx)
    if "rsagent detection suite" not in web.get("index.html"):
        raise ScenarioError("lighttpd did not serve the page")
    if "hello from" not in web.get("hello.cgi"):
        raise ScenarioError("lighttpd did not run the CGI")
