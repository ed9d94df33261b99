"""Real Debian daemons started by the suite, each on its own configuration
in a scratch directory, bound to 127.0.0.1 (packages installed by
`make test-detection`; their init scripts are never started)."""

from __future__ import annotations

import base64
import shlex
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from detection_context import Context, ScenarioError

WWW_USER = "www-data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise ScenarioError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s") from None
            time.sleep(0.05)


def require(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None and not Path(p).exists()]
    if missing:
        raise ScenarioError(f"missing {', '.join(missing)}: `make test-detection` installs the suite's packages")


CMD_CGI = """#!/bin/sh
# a CGI with a command injection: the query string (base64) is run by a shell
printf 'Content-Type: text/plain\\r\\n\\r\\n'
cmd=$(printf '%s' "$QUERY_STRING" | base64 -d)
sh -c "$cmd" 2>&1
"""

HELLO_CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "hello from $SERVER_SOFTWARE"
"""


@dataclass
class WebServer:
    port: int
    docroot: Path

    def get(self, path: str, timeout: float = 60) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/{path}", timeout=timeout) as r:
            return str(r.read().decode(errors="replace"))

    def run(self, command: str) -> str:
        """Exploit cmd.cgi: the server runs `command` (as www-data)."""
        return self.get("cmd.cgi?" + base64.b64encode(command.encode()).decode())


def lighttpd(ctx: Context) -> WebServer:
    """lighttpd as Debian configures it (user www-data, mod_cgi), serving a
    document root with a static page, a harmless CGI and a vulnerable one."""
    require("/usr/sbin/lighttpd")
    docroot = ctx.mkdir_after(f"/var/www/rsagent-detection-{ctx.tag}")
    (docroot / "index.html").write_text("<html><body>rsagent detection suite</body></html>\n")
    for name, text in (("cmd.cgi", CMD_CGI), ("hello.cgi", HELLO_CGI)):
        (docroot / name).write_text(text)
        (docroot / name).chmod(0o755)
    shutil.chown(docroot, WWW_USER, WWW_USER)
    state = ctx.tmp / "lighttpd"   # the server writes its log as www-data
    state.mkdir()
    shutil.chown(state, WWW_USER, WWW_USER)
    port = free_port()
    conf = ctx.tmp / "lighttpd.conf"
    conf.write_text(f"""
server.document-root = "{docroot}"
server.bind = "127.0.0.1"
server.port = {port}
server.username = "{WWW_USER}"
server.groupname = "{WWW_USER}"
server.pid-file = "{state}/lighttpd.pid"
server.errorlog = "{state}/error.log"
server.modules = ("mod_cgi")
cgi.assign = (".cgi" => "")
index-file.names = ("index.html")
""")
    ctx.spawn(["/usr/sbin/lighttpd", "-D", "-f", str(conf)])
    wait_port(port, "lighttpd")
    return WebServer(port, docroot)


@dataclass
class SshServer:
    port: int
    key: Path

    def ssh(self, ctx: Context, command: str) -> str:
        result = ctx.sh(
            f"ssh -i {self.key} -p {self.port} -o BatchMode=yes -o StrictHostKeyChecking=no "
            f"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.1 {shlex.quote(command)}")
        return result.stdout


def sshd(ctx: Context) -> SshServer:
    """Debian's OpenSSH server on its own port and configuration, accepting a
    key made for the test (authorized keys in the scratch directory)."""
    require("/usr/sbin/sshd", "ssh", "ssh-keygen")
    key = ctx.tmp / "client_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    keys = ctx.tmp / "login_keys"
    keys.write_bytes(key.with_suffix(".pub").read_bytes())
    hostkey = Path("/etc/ssh/ssh_host_ed25519_key")
    if not hostkey.exists():
        hostkey = ctx.tmp / "host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)], check=True)
    if not Path("/run/sshd").exists():
        ctx.mkdir_after("/run/sshd")
    port = free_port()
    conf = ctx.tmp / "sshd_config"
    conf.write_text(f"""
Port {port}
ListenAddress 127.0.0.1
HostKey {hostkey}
PidFile {ctx.tmp}/sshd.pid
AuthorizedKeysFile {keys}
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
""")
    ctx.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", str(conf)])
    wait_port(port, "sshd")
    return SshServer(port, key)
