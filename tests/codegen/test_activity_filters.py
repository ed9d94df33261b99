"""In-kernel filters of the process-activity types (issue 9): exact values
of scalar arguments (the `value` check: ptrace.request, signal.type,
prctl.option), bit masks (memfd_create.flags, unshare.flags,
setns.namespace.type, splice.pipe_exit_flag) and basenames (chdir.file,
splice.file)."""

from __future__ import annotations

from pathlib import Path

from codegen.cbackend import BASENAME, FLAGS, VALUE, kernel_filters, render_policy_header
from codegen.kconstants import family_values
from codegen.policy import load_policies

PTRACE, SIG, PR = family_values("ptrace"), family_values("signals"), family_values("prctl")
CLONE, PIPE = family_values("clone"), family_values("pipe_buf")

POLICY = """
rules:
  - id: attach
    expression: ptrace.request in [PTRACE_ATTACH, PTRACE_SEIZE] && process.uid != 0
  - id: poke
    expression: ptrace.request == PTRACE_POKETEXT
  - id: kill
    expression: signal.type == SIGKILL && signal.target.file.name == "sshd"
  - id: rename
    expression: prctl.option == PR_SET_NAME && prctl.new_name =~ "[kworker*"
  - id: fileless
    expression: memfd_create.flags & MFD_EXEC > 0
  - id: userns
    expression: unshare.flags & CLONE_NEWUSER > 0
  - id: host_mnt
    expression: setns.namespace.type & CLONE_NEWNS > 0 && setns.namespace.is_host
  - id: dirty_pipe
    expression: splice.pipe_exit_flag & PIPE_BUF_FLAG_CAN_MERGE > 0
  - id: into_etc
    expression: chdir.file.path == "/etc/cron.d"
  - id: capset_any
    expression: capset.cap_effective & CAP_SYS_ADMIN > 0
"""


def test_each_type_gets_its_kernel_check(tmp_path: Path) -> None:
    path = tmp_path / "a.policy"
    path.write_text(POLICY)
    result = load_policies([path])
    assert result.ok, result.diagnostics.sorted()
    f = kernel_filters(result.ruleset)
    assert f["ptrace"].approve_kinds == (VALUE,)
    assert f["ptrace"].values == {PTRACE["PTRACE_ATTACH"], PTRACE["PTRACE_SEIZE"], PTRACE["PTRACE_POKETEXT"]}
    assert f["signal"].approve_kinds == (VALUE,) and f["signal"].values == {SIG["SIGKILL"]}
    assert f["prctl"].values == {PR["PR_SET_NAME"]}
    assert f["memfd_create"].approve_kinds == (FLAGS,) and f["memfd_create"].flags_mask == 0x10
    assert f["unshare"].flags_mask == CLONE["CLONE_NEWUSER"]
    assert f["setns"].approve_kinds == (FLAGS,) and f["setns"].flags_mask == CLONE["CLONE_NEWNS"]
    assert f["splice"].approve_kinds == (FLAGS,) and f["splice"].flags_mask == PIPE["PIPE_BUF_FLAG_CAN_MERGE"]
    assert f["chdir"].approve_kinds == (BASENAME,) and f["chdir"].basenames == {"cron.d"}
    # no approvable field: everything is sent, and the filter says why
    assert f["capset"].approve_kinds == () and "no approvable field" in (f["capset"].reason or "")
    header = render_policy_header(f)
    assert "#define RS_POLICY_APPROVE_PTRACE (RS_APPROVE_VALUE)" in header
    assert "#define RS_POLICY_APPROVE_SPLICE (RS_APPROVE_FLAGS)" in header


def test_a_negated_value_gives_no_approver(tmp_path: Path) -> None:
    path = tmp_path / "n.policy"
    path.write_text("rules:\n  - id: n\n    expression: signal.type != SIGCHLD\n")
    result = load_policies([path])
    f = kernel_filters(result.ruleset)["signal"]
    assert f.approve_kinds == () and "negation" in (f.reason or "")
