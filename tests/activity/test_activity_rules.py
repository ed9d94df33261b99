"""Rules on every process-activity type load and fire through `rsagent
run`; the types with an approvable field drop the rest in the kernel
(its own counters say so), except a PR_SET_NAME, which renames the process
in the cache whatever the policy (a lifecycle type: its own ring buffer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from activity_helpers import child_output, run_child
from agentproc import counters, start_agent

pytestmark = pytest.mark.root

UID, GID = 4321, 4322
REPEATS = 50

RULES = {
    "act_ptrace": ("ptrace", 'ptrace.request == PTRACE_ATTACH && ptrace.tracee.file.name == "sleep"'),
    "act_signal": ("signal", 'signal.type == SIGUSR1 && signal.target.comm == "sleep"'),
    "act_setuid": ("setuid", f"setuid.euid == {UID} && setuid.retval == 0"),
    "act_setgid": ("setgid", f"setgid.egid == {GID}"),
    "act_capset": ("capset", f"capset.cap_permitted == 0 && process.uid == {UID}"),
    "act_memfd": ("memfd_create", 'memfd_create.name == "rs-rule-memfd" && memfd_create.file.is_memfd'),
    "act_splice": ("splice", 'splice.file.name == "rs-rule-splice" && splice.pipe_entry_flag & PIPE_BUF_FLAG_CAN_MERGE > 0'),
    # its approver keeps PR_GET_KEEPCAPS only: the PR_SET_NAME must still reach the process cache
    "act_prctl": ("prctl", "prctl.option == PR_GET_KEEPCAPS && prctl.retval == 0"),
    "act_renamed": ("chdir", 'chdir.file.name == "rs-rule-dir2" && process.parent.comm == "rs-rule-name"'),
    "act_chdir": ("chdir", 'chdir.file.name == "rs-rule-dir" && chdir.syscall.path == "rs-rule-dir"'),
    "act_unshare": ("unshare", "unshare.flags & CLONE_NEWUTS > 0"),
    "act_setns": ("setns", "setns.namespace.type & CLONE_NEWUTS > 0 && setns.namespace.is_host"),
}

WORKLOAD = """
import subprocess, time, signal
sleeper = subprocess.Popen(['/bin/sleep', '60']); time.sleep(0.2)
assert sc('ptrace', PTRACE['PTRACE_ATTACH'], sleeper.pid, 0, 0) == 0
os.waitpid(sleeper.pid, 0)
for _ in range({n}):
    sc('ptrace', PTRACE['PTRACE_PEEKDATA'], sleeper.pid, 8, 0)
assert sc('ptrace', PTRACE['PTRACE_DETACH'], sleeper.pid, 0, 0) == 0
for _ in range({n}):
    os.kill(sleeper.pid, 0)
os.kill(sleeper.pid, signal.SIGUSR1); sleeper.wait()
os.close(sc('memfd_create', b'rs-rule-memfd', 0))
for _ in range({n}):
    sc('prctl', PR['PR_GET_DUMPABLE'], 0, 0, 0, 0)
sc('prctl', PR['PR_SET_NAME'], b'rs-rule-name', 0, 0, 0)
sc('prctl', PR['PR_GET_KEEPCAPS'], 0, 0, 0, 0)
subprocess.run(['/bin/sh', '-c', 'cd ' + {work!r} + '/rs-rule-dir2'], check=True)
os.chdir({work!r}); os.chdir('rs-rule-dir'); os.chdir('/')
r, w = os.pipe(); os.write(w, b'x' * 16); os.read(r, 16)
src = os.open({work!r} + '/rs-rule-splice', os.O_RDONLY)
assert sc('splice', src, 0, w, 0, 4, 0) == 4
uts = os.open('/proc/self/ns/uts', os.O_RDONLY)
assert sc('unshare', CLONE['CLONE_NEWUTS']) == 0
assert sc('setns', uts, CLONE['CLONE_NEWUTS']) == 0
os.setresgid({gid}, {gid}, {gid}); os.setresuid({uid}, {uid}, {uid})
import ctypes
hdr = (ctypes.c_uint32 * 2)(0x20080522, 0); data = (ctypes.c_uint32 * 6)()
assert sc('capset', hdr, data) == 0
print('pid=', os.getpid())
"""


def test_a_rule_on_every_type_fires_and_approvers_drop_in_the_kernel(tmp_path: Path, built_objects: None) -> None:
    policy = tmp_path / "activity.policy"
    policy.write_text("rules:\n" + "".join(f"  - id: {rid}\n    expression: {expr}\n"
                                           for rid, (_, expr) in RULES.items()))
    work = tmp_path / "work"
    (work / "rs-rule-dir").mkdir(parents=True)
    (work / "rs-rule-dir2").mkdir()
    (work / "rs-rule-splice").write_text("data")
    agent = start_agent(policy, tmp_path)
    out = child_output(run_child(WORKLOAD.format(n=REPEATS, work=str(work), uid=UID, gid=GID)))
    for rid in RULES:
        assert agent.wait_for(rid), f"{rid} did not fire; alerts: {sorted({a['rule_id'] for a in agent.alerts()})}"
    stderr = agent.stop()
    fired = {a["rule_id"]: a for a in agent.alerts()}
    for rid, (event_type, _) in RULES.items():
        event = fired[rid]["event"]
        pid = event["process"]["ppid"] if rid == "act_renamed" else event["process"]["pid"]
        assert event["type"] == event_type and pid == out["pid"], rid
    stats = counters(stderr)
    # value approvers: the PEEKs, kill(pid, 0)s and PR_GET_DUMPABLEs never left the kernel
    for event_type in ("ptrace", "signal", "prctl"):
        assert stats[event_type]["dropped_approver"] >= REPEATS, (event_type, stats[event_type])
        assert stats[event_type]["lost"] == 0
