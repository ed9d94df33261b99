"""What a scenario acts with: processes it starts (its origins, to which
alerts are attributed) and everything it must undo.

Every change a scenario makes to the machine is registered here before it is
made (a backup of a file, a path to remove, a mount to undo, a user to
delete), and undone in reverse order whatever happens. Setup and cleanup run
in the test process itself: their alerts are not the scenario's.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shlex
import shutil
import socket
import socketserver
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from detection_agent import Marker, Origin, Root

NOBODY = 65534


class ScenarioError(AssertionError):
    pass


@dataclass
class Saved:
    path: Path
    data: bytes | None  # None: the path did not exist
    mode: int = 0
    uid: int = 0
    gid: int = 0


class Context:
    def __init__(self, name: str) -> None:
        self.name = name
        self.origins: list[Origin] = []
        self._undo = contextlib.ExitStack()
        # a scratch directory every user can enter (scenarios run some steps as nobody)
        self.tmp = Path(tempfile.mkdtemp(prefix="rsagent-detection-"))
        os.chmod(self.tmp, 0o755)
        self._undo.callback(shutil.rmtree, self.tmp, ignore_errors=True)
        self.tag = uuid.uuid4().hex[:12]

    # --- acting ---------------------------------------------------------------------

    def sh(self, script: str, *, user: int | None = None, check: bool = True, timeout: float = 60,
           env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run a bash script as a new origin (as root, or as `user` through setpriv)."""
        argv = ["bash", "-c", script]
        if user is not None:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *argv]
        started = time.time_ns()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, cwd=cwd or self.tmp)
        self.origins.append(Root(proc.pid, started))
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise ScenarioError(f"{self.name}: `{script}` did not finish within {timeout} s: {err}") from None
        result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        if check and proc.returncode != 0:
            raise ScenarioError(f"{self.name}: `{script}` exited {proc.returncode}: {err.strip()}")
        return result

    def spawn(self, argv: list[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A background process the scenario needs (a victim, a daemon); stopped at cleanup."""
        started = time.time_ns()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.origins.append(Root(proc.pid, started))
        self._undo.callback(_stop, proc)
        return proc

    def marker(self) -> str:
        """A string to put in a command line served by a daemon; alerts whose
        process or ancestors carry it are the scenario's."""
        text = f"rsdet{self.tag}"
        self.origins.append(Marker(text))
        return text

    # --- undoing --------------------------------------------------------------------

    def preserve(self, path: str | Path) -> Path:
        """Restore `path` (content, mode, owner; or its absence) at cleanup."""
        p = Path(path)
        if p.exists() or p.is_symlink():
            st = p.lstat()
            if not stat.S_ISREG(st.st_mode):
                raise ScenarioError(f"{self.name}: {p} is not a regular file; refusing to touch it")
            saved = Saved(p, p.read_bytes(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        else:
            saved = Saved(p, None)
        self._undo.callback(_restore, saved)
        return p

    def remove_after(self, path: str | Path) -> Path:
        """`path` must not exist now; whatever is there at cleanup is removed."""
        p = Path(path)
        if p.exists() or p.is_symlink():
            raise ScenarioError(f"{self.name}: {p} exists already; refusing to touch it")
        self._undo.callback(_remove, p)
        return p

    def mkdir_after(self, path: str | Path) -> Path:
        """Create directory `path` (and missing parents) now, remove what was created at cleanup."""
        p = Path(path)
        missing = []
        q = p
        while not q.exists():
            missing.append(q)
            q = q.parent
        for d in reversed(missing):
            d.mkdir()
            self._undo.callback(shutil.rmtree, d, ignore_errors=True)
        return p

    def umount_after(self, point: str | Path) -> None:
        self._undo.callback(_umount, Path(point))

    def user_after(self, name: str) -> None:
        """A user the scenario creates: deleted at cleanup if present."""
        self._undo.callback(_userdel, name)

    def loop_device(self, size_mb: int = 4, fs: str | None = None) -> str:
        image = self.tmp / "disk.img"
        with image.open("wb") as f:
            f.truncate(size_mb << 20)
        if fs is not None:
            subprocess.run([f"mkfs.{fs}", "-q", "-F", str(image)], check=True, capture_output=True)
        dev = subprocess.run(["losetup", "--find", "--show", str(image)], check=True,
                             capture_output=True, text=True).stdout.strip()
        self._undo.callback(subprocess.run, ["losetup", "-d", dev], capture_output=True)
        return dev

    def container(self) -> Path:
        """A cgroup named like a Docker container's (docker-<64 hex>.scope): the
        agent gives processes in it a container id, as for a real container."""
        cid = uuid.uuid4().hex + uuid.uuid4().hex
        base = Path("/sys/fs/cgroup/unified")
        if not (base / "cgroup.procs").exists():
            base = Path("/sys/fs/cgroup")
        group = base / f"rsagent-detection-{self.tag}" / f"docker-{cid}.scope"
        group.mkdir(parents=True)
        self._undo.callback(_remove_cgroup, group)
        return group / "cgroup.procs"

    def in_container(self, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `script` in a new fake container (see :meth:`container`)."""
        procs = self.container()
        return self.sh(f"echo $$ > {procs} && exec bash -c {shlex.quote(script)}", check=check)

    def http_server(self, files: dict[str, bytes]) -> int:
        """A local HTTP server (a thread of the test process) serving `files`; returns its port."""
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._undo.callback(server.server_close)
        self._undo.callback(server.shutdown)
        return int(server.server_address[1])

    def shell_listener(self, commands: bytes = b"exit\n") -> int:
        """A TCP listener that plays the attacker's side of a reverse shell: it
        sends `commands` to whoever connects, then closes. Returns its port."""
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        srv.settimeout(60)

        def serve() -> None:
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = srv.accept()
                    with conn:
                        conn.sendall(commands)
                        conn.settimeout(5)
                        with contextlib.suppress(OSError):
                            while conn.recv(4096):
                                pass

        threading.Thread(target=serve, daemon=True).start()
        self._undo.callback(srv.close)
        return int(srv.getsockname()[1])

    def close(self) -> None:
        self._undo.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _restore(saved: Saved) -> None:
    p = saved.path
    if saved.data is None:
        _remove(p)
        return
    if p.is_symlink() or (p.exists() and not p.is_file()):
        _remove(p)
    with contextlib.suppress(OSError):
        subprocess.run(["chattr", "-i", "-a", str(p)], capture_output=True)
    p.write_bytes(saved.data)
    os.chown(p, saved.uid, saved.gid)
    os.chmod(p, saved.mode)


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        subprocess.run(["chattr", "-i", "-a", str(p)], capture_output=True)
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p, ignore_errors=True)


def _umount(point: Path) -> None:
    for _ in range(5):
        if subprocess.run(["mountpoint", "-q", str(point)]).returncode != 0:
            return
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def _userdel(name: str) -> None:
    if subprocess.run(["id", name], capture_output=True).returncode == 0:
        subprocess.run(["userdel", "-f", name], capture_output=True)
    if subprocess.run(["getent", "group", name], capture_output=True).returncode == 0:
        subprocess.run(["groupdel", name], capture_output=True)


def _remove_cgroup(group: Path) -> None:
    # move anything left back to the root cgroup, then remove the two levels
    root = group.parent.parent / "cgroup.procs"
    procs = group / "cgroup.procs"
    if procs.exists():
        for pid in procs.read_text().split():
            with contextlib.suppress(OSError):
                root.write_text(pid)
    for d in (group, group.parent):
        for _ in range(50):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


@contextlib.contextmanager
def context(name: str) -> Iterator[Context]:
    ctx = Context(name)
    try:
        yield ctx
    finally:
        ctx.close()


Step = Callable[[Context], None]
