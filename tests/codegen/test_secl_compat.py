"""Compatibility with the reference agent's policies: rule-level fault
isolation, host filters, agent_version, silent/every: 0, legacy aliases,
argument flags and options, and the action/variable semantics (filter
guards, set expressions, scopes, scope_field, ttl, inherited, builtins).
The policies are our own, written with the constructs the reference
agent's published default policies use (docs/secl.md "Compatibility")."""
from __future__ import annotations

import copy
from pathlib import Path
from collections.abc import Callable
from typing import Any

import pytest

from agent.engine import Engine
from agent.hashing import Hasher
from agent.evaluator.cmdline import flags, options
from agent.evaluator.event import DocumentEvent
from codegen.agentversion import VersionError, parse_constraint, parse_version
from codegen.cli import main as rulec
from codegen.hostinfo import host_document
from agent.replay import CollectingSink
from codegen.policy import LoadResult, load_policies
from secl_helpers import NOW, evaluate, open_event

WritePolicy = Callable[..., Path]
HOST = host_document(release="6.1.0-18-amd64", os_release="ID=debian\nVERSION_ID=12\n",
                     environ={"DD_FLAVOR": "x", "HOME": "/root"})


def load(write_policy: WritePolicy, text: str, **kwargs: Any) -> LoadResult:
    kwargs.setdefault("host", HOST)
    return load_policies([write_policy(text)], **kwargs)


def skipped(result: LoadResult) -> list[tuple[str, str]]:
    return [(s.id, s.reason) for s in result.skipped]


# --- rule-level fault isolation ---------------------------------------------------

ISOLATION = """version: 1.0.0
macros:
  - id: broken
    expression: exec.file.nme == "x"
  - id: fine
    expression: exec.file.name == "sh"
rules:
  - id: good
    expression: open.file.path == "/etc/shadow"
  - id: typo
    expression: open.file.pth == "/etc/shadow"
  - id: windows_type
    expression: set.registry.key_path == "HKLM"
  - id: not_produced
    expression: sysctl.name == "kernel.yama.ptrace_scope"
  - id: needs_broken
    expression: broken && process.uid == 0
  - id: needs_fine
    expression: fine
  - id: bad_action
    expression: open.file.path == "/etc/a"
    actions:
      - coredump: {}
  - id: bad_every
    expression: open.file.path == "/etc/b"
    every: sometimes
"""


def test_each_rule_that_cannot_load_is_left_out_with_its_reason(write_policy: WritePolicy) -> None:
    result = load(write_policy, ISOLATION)
    assert result.ok, [d.format() for d in result.diagnostics]
    assert [r.id for r in result.ruleset.rules] == ["good", "needs_fine"]
    assert skipped(result) == [("typo", "unknown_field"), ("windows_type", "unsupported_type"),
                               ("not_produced", "unsupported_type"), ("needs_broken", "unknown_field"),
                               ("bad_action", "unsupported"), ("bad_every", "invalid")]
    by_id = {s.id: s for s in result.skipped}
    assert (by_id["typo"].position.line, by_id["typo"].position.col) == (11, 17)
    # the rule names the macro that failed, and where the macro's problem is
    assert by_id["needs_broken"].message.startswith("macro 'broken' is invalid (see its errors): ")
    assert by_id["needs_broken"].message.endswith(":4:17: unknown field 'exec.file.nme', did you mean 'exec.file.name'?")
    # the macro's own problem is reported once, as a warning
    macro_warnings = [d for d in result.diagnostics if "macro 'broken' not loaded" in d.message]
    assert len(macro_warnings) == 1 and not macro_warnings[0].is_error
    assert result.skip_counts()["unknown_field"] == 2 and result.summary() == (
        "2 rule(s) loaded; skipped: 2 unsupported_type, 2 unknown_field, 1 unsupported, 1 invalid")


def test_policy_level_problems_still_fail(write_policy: WritePolicy) -> None:
    syntax = load(write_policy, "rules:\n  - id: a\n    expression: [\n")
    assert not syntax.ok
    dup = load(write_policy, "rules:\n  - id: a\n    expression: open.flags > 0\n"
                             "  - id: a\n    expression: open.flags > 1\n")
    assert not dup.ok and "already defined" in dup.diagnostics.errors[0].message


def test_rulec_validate_warns_and_strict_fails(write_policy: WritePolicy, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_policy(ISOLATION)
    assert rulec(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("2 rule(s) loaded; skipped: 2 unsupported_type, 2 unknown_field, 1 unsupported, 1 invalid")
    assert f"{path}:11:17: warning: rule 'typo' not loaded: unknown field 'open.file.pth'" in err
    assert rulec(["validate", "--strict", str(path)]) == 1
    _, err = capsys.readouterr()
    assert f"{path}:11:17: error: unknown field 'open.file.pth'" in err


# --- host filters ---------------------------------------------------------------------

FILTERS = """macros:
  - id: shell
    expression: exec.file.name == "cmd.exe"
    filters: [os == "windows"]
  - id: shell
    expression: exec.file.name == "sh"
    filters: [os == "linux"]
rules:
  - id: linux_rule
    expression: shell
    filters: [os == "linux"]
  - id: windows_rule
    expression: registry.key_path == "x"
    filters: [os == "windows"]
  - id: old_kernels
    expression: open.file.path == "/etc/x"
    filters: ["kernel.version.major < 5", "os.is_rhel7"]
  - id: new_kernels
    expression: open.file.path == "/etc/y"
    filters: ["kernel.version.major >= 6 && kernel.version.abi == 18 && os.is_debian"]
  - id: env_filter
    expression: open.file.path == "/etc/z"
    filters: ['"DD_FLAVOR=x" in envs && origin == "ebpf" && kernel.core.enabled']
  - id: bad_filter
    expression: open.file.path == "/etc/w"
    filters: [os == 3]
"""


def test_filters_exclude_rules_and_macros_before_merging(write_policy: WritePolicy) -> None:
    result = load(write_policy, FILTERS)
    assert result.ok, [d.format() for d in result.diagnostics]
    assert [r.id for r in result.ruleset.rules] == ["linux_rule", "new_kernels", "env_filter"]
    assert skipped(result) == [("windows_rule", "filter"), ("old_kernels", "filter"), ("bad_filter", "invalid")]
    assert result.failed == [s for s in result.skipped if s.id == "bad_filter"]
    rule = result.ruleset.get("linux_rule")
    assert rule is not None and rule.event_type == "exec"  # the linux definition of the macro
    assert rule.matches({"type": "exec", "exec": {"file": {"name": "sh"}}})
    # without a host, filters are checked, not applied: the windows rule fails on its field
    unfiltered = load(write_policy, FILTERS, host=None)
    assert ("windows_rule", "unsupported_type") in skipped(unfiltered)


def test_a_local_policy_may_disable_a_rule_filtered_out(tmp_path: Path, write_policy: WritePolicy) -> None:
    write_policy(FILTERS, name="default.policy")
    write_policy("rules:\n  - id: windows_rule\n    disabled: true\n  - id: linux_rule\n    disabled: true\n"
                 "  - id: old_kernels\n    combine: override\n    expression: open.file.path == \"/etc/o\"\n",
                 name="local.policy")
    result = load_policies([tmp_path], host=HOST)
    assert result.ok, [d.format() for d in result.diagnostics]
    assert [r.id for r in result.ruleset.rules] == ["new_kernels", "env_filter"]


def test_os_is_the_os_kind(write_policy: WritePolicy) -> None:
    assert HOST["os"]["kind"] == "linux" and host_document()["os"]["kind"] == "linux"


# --- agent_version ----------------------------------------------------------------------

@pytest.mark.parametrize("constraint, version, allowed", [
    (">= 7.65", "7.65.0", True), (">=7.65", "7.64.9", False), ("< 7.71", "7.70.3", True),
    ("< 7.71", "7.71.0", False), (">=7.65 <7.70", "7.69.0", True), (">=7.65 <7.70", "7.70.0", False),
    (">=7.65, <7.70", "7.66.0", True), ("< 7.0 || >= 7.71", "7.72.0", True), ("< 7.0 || >= 7.71", "7.50.0", False),
    ("7.71", "7.71.4", True), ("7.x", "7.1.0", True), ("~7.70.1", "7.70.9", True), ("~7.70.1", "7.71.0", False),
    ("^7.2", "7.99.0", True), ("^7.2", "8.0.0", False), ("!= 7.70.1", "7.70.1", False), (">= 7.70.1-rc.1", "7.70.1", True),
])
def test_agent_version_constraints(constraint: str, version: str, allowed: bool) -> None:
    assert parse_constraint(constraint).allows(parse_version(version)) is allowed


@pytest.mark.parametrize("text", ["", ">=", ">= seven", "<< 7", ">= 7.1 ||"])
def test_bad_agent_version_constraints(text: str) -> None:
    with pytest.raises(VersionError):
        parse_constraint(text)


VERSIONS = """rules:
  - id: old_agents
    expression: open.file.path == "/etc/x"
    agent_version: < 7.71
  - id: new_agents
    expression: open.file.path == "/etc/x"
    agent_version: ">= 7.71"
  - id: bad_constraint
    expression: open.file.path == "/etc/y"
    agent_version: ">= soon"
"""


def test_agent_version_picks_one_rule_of_a_pair(write_policy: WritePolicy) -> None:
    result = load(write_policy, VERSIONS)
    assert [r.id for r in result.ruleset.rules] == ["new_agents"]
    assert skipped(result) == [("old_agents", "agent_version"), ("bad_constraint", "invalid")]
    older = load(write_policy, VERSIONS, agent_version="7.60.0")
    assert [r.id for r in older.ruleset.rules] == ["old_agents"]


# --- silent, every: 0, product_tags -------------------------------------------------------

def test_silent_rules_set_variables_without_alerting(write_policy: WritePolicy) -> None:
    result = load(write_policy, """rules:
  - id: mark
    expression: open.file.path == "/etc/my_secrets"
    silent: true
    every: 0
    product_tags: [cws]
    actions:
      - set: {name: marked, value: true, scope: process}
  - id: marked_again
    expression: open.file.path == "/etc/my_secrets" && ${process.marked}
    every: 0
""")
    assert result.ok and not result.skipped, [d.format() for d in result.diagnostics]
    assert result.ruleset.get("mark").every is None  # type: ignore[union-attr]
    sink = CollectingSink()
    engine = Engine(result.ruleset, [sink])
    for i in range(3):
        engine(open_event(timestamp=NOW + i))
    assert [a["rule_id"] for a in sink.alerts] == ["marked_again"] * 3  # every: 0 throttles nothing
    assert engine.stats.matches["mark"] == 3


# --- legacy aliases, args flags and options -------------------------------------------------

@pytest.mark.parametrize("expr", [
    'open.filename == "/etc/my_secrets"', 'open.basename == "my_secrets"', "open.mode == 0o100644",
    'process.filename == "/usr/bin/cat"', 'process.name == "cat"', 'process.ancestors.name == "bash"',
    'event.origin == "ebpf"', 'event.source == "runtime"',
])
def test_legacy_aliases_read_the_fields_they_stand_for(expr: str) -> None:
    doc = open_event()
    doc["open"]["file"]["destination"] = {"mode": 0o100644}
    assert evaluate(expr, doc)


def test_chmod_chown_rename_aliases() -> None:
    chmod = {"type": "chmod", "chmod": {"file": {"path": "/etc/x", "destination": {"mode": 0o777}}}}
    assert evaluate("chmod.mode == 0o777 && chmod.filename == \"/etc/x\"", chmod)
    chown = {"type": "chown", "chown": {"file": {"path": "/x", "destination": {"uid": 0, "user": "root"}}}}
    assert evaluate('chown.uid == 0 && chown.user == "root"', chown)
    rename: dict[str, Any] = {"type": "rename", "rename": {"file": {"path": "/a/old"}, "destination": {}}}
    rename["rename"]["file"]["destination"] = {"path": "/a/new"}
    assert evaluate('rename.old.filename == "/a/old" && rename.new.filename == "/a/new"', rename)


@pytest.mark.parametrize("args, want_flags, want_options", [
    (["-la", "/tmp"], ["l", "a", "la"], ["la=/tmp"]),
    (["--all", "--user=bob", "-u", "x"], ["all", "u"], ["user=bob", "u=x"]),
    (["-", "--", "-x=1", "plain"], [], ["x=1"]),
    (["-a-b"], ["a-b"], []),
])
def test_args_flags_and_options(args: list[str], want_flags: list[str], want_options: list[str]) -> None:
    assert flags(args) == want_flags and options(args) == want_options


def test_exec_args_flags_fields() -> None:
    doc = {"type": "exec", "exec": {"argv": ["xmrig", "--donate-level=1", "-B"], "file": {"name": "xmrig"}}}
    assert evaluate('exec.args_flags == "B" && exec.args_options in [~"donate-level=*"]', doc)
    assert not evaluate('exec.args_flags == "xmrig"', doc)  # argv[0] is not an argument


# --- actions and variables ----------------------------------------------------------------

def doc_for(pid: int, cgroup: str, ts: int = NOW, ancestors: tuple[int, ...] = (), path: str = "/etc/my_secrets"
            ) -> dict[str, Any]:
    doc = open_event(timestamp=ts)
    doc["open"]["file"]["path"] = path
    doc["process"] = {"pid": pid, "comm": "x", "cgroup": {"id": cgroup},
                      "ancestors": [{"pid": p, "comm": "p"} for p in ancestors]}
    return copy.deepcopy(doc)


def matching(result: LoadResult, doc: dict[str, Any]) -> list[str]:
    return [r.id for r in result.ruleset.matching(DocumentEvent(doc))]


SCOPES = """rules:
  - id: setter
    expression: open.file.path == "/etc/set"
    actions:
      - set: {name: seen, value: true, scope: cgroup}
      - set: {name: mine, value: true, scope: process, inherited: true}
      - set: {name: short, value: true, scope: process, ttl: 1000000000}
      - set: {name: long, value: true, scope: process, ttl: 2s}
  - id: cgroup_reader
    expression: open.file.path == "/etc/read" && ${cgroup.seen}
  - id: inherited_reader
    expression: open.file.path == "/etc/read" && ${process.mine}
  - id: short_reader
    expression: open.file.path == "/etc/read" && ${process.short}
  - id: long_reader
    expression: open.file.path == "/etc/read" && ${process.long}
"""


def test_cgroup_scope_is_shared_within_a_cgroup_only(write_policy: WritePolicy) -> None:
    result = load(write_policy, SCOPES)
    assert result.ok and not result.skipped, [d.format() for d in result.diagnostics]
    assert matching(result, doc_for(100, "cg-a", path="/etc/set")) == ["setter"]
    assert "cgroup_reader" in matching(result, doc_for(200, "cg-a", path="/etc/read"))  # another process, same cgroup
    assert "cgroup_reader" not in matching(result, doc_for(300, "cg-b", path="/etc/read"))  # another cgroup


def test_ttl_expiry_in_ns_and_as_duration(write_policy: WritePolicy) -> None:
    result = load(write_policy, SCOPES)
    matching(result, doc_for(100, "cg-a", path="/etc/set"))
    half = matching(result, doc_for(100, "cg-a", NOW + 500_000_000, path="/etc/read"))
    assert {"short_reader", "long_reader"} <= set(half)
    later = matching(result, doc_for(100, "cg-a", NOW + 1_500_000_000, path="/etc/read"))
    assert "short_reader" not in later and "long_reader" in later  # 1e9 ns expired, 2 s not
    assert "long_reader" not in matching(result, doc_for(100, "cg-a", NOW + 2_000_000_000, path="/etc/read"))


def test_inherited_process_variables_reach_descendants_only(write_policy: WritePolicy) -> None:
    result = load(write_policy, SCOPES)
    matching(result, doc_for(100, "cg-a", path="/etc/set"))
    assert "inherited_reader" in matching(result, doc_for(101, "cg-a", ancestors=(100, 1), path="/etc/read"))
    assert "inherited_reader" in matching(result, doc_for(102, "cg-a", ancestors=(101, 100, 1), path="/etc/read"))
    assert "inherited_reader" not in matching(result, doc_for(103, "cg-a", ancestors=(50, 1), path="/etc/read"))
    assert "short_reader" not in matching(result, doc_for(101, "cg-a", ancestors=(100, 1), path="/etc/read"))


def test_filter_guards_set_expressions_builtins_and_arithmetic(write_policy: WritePolicy) -> None:
    result = load(write_policy, """rules:
  - id: count
    expression: open.file.path == "/etc/set"
    actions:
      - set: {name: n, expression: "${process.n} + 1", scope: process, default_value: 0}
      - filter: ${process.n} >= 2
        set: {name: key, expression: '"k_${builtins.uuid4}"', scope: process}
      - set: {name: paths, expression: open.file.path, append: true, scope: process}
      - set: {name: names, value: ["a", "b"], scope: process}
  - id: keyed
    expression: open.file.path == "/etc/read" && ${process.key} =~ "k_*" && ${process.n} == 2
  - id: list_right
    expression: open.file.path in ${process.paths} && open.file.path == "/etc/set"
  - id: list_left
    expression: open.file.path == "/etc/read" && ${process.names} in ["b", "z"]
""")
    assert result.ok and not result.skipped, [(s.id, s.message) for s in result.skipped]
    assert "keyed" not in matching(result, doc_for(100, "cg", path="/etc/set"))
    assert "keyed" not in matching(result, doc_for(100, "cg", path="/etc/read"))  # n == 1: the guard held the set
    assert "list_right" in matching(result, doc_for(100, "cg", path="/etc/set"))  # n == 2 now, key set
    key = result.ruleset.variables.lookup("process.key", DocumentEvent(doc_for(100, "cg")))
    assert isinstance(key, str) and len(key) == len("k_") + 36
    assert {"keyed", "list_left"} <= set(matching(result, doc_for(100, "cg", path="/etc/read")))
    assert "list_left" not in matching(result, doc_for(999, "cg", path="/etc/read"))


def test_scope_field_keys_the_variable_by_another_field(write_policy: WritePolicy) -> None:
    result = load(write_policy, """rules:
  - id: by_parent
    expression: open.file.path == "/etc/set"
    actions:
      - set: {name: flagged, value: true, scope: process, scope_field: process.ppid}
  - id: reader
    expression: open.file.path == "/etc/read" && ${process.flagged}
""")
    assert result.ok and not result.skipped, [(s.id, s.message) for s in result.skipped]
    setter = doc_for(100, "cg", path="/etc/set")
    setter["process"]["ppid"] = 42
    matching(result, setter)
    assert "reader" in matching(result, doc_for(42, "cg", path="/etc/read"))
    assert "reader" not in matching(result, doc_for(100, "cg", path="/etc/read"))


def test_scope_field_cgroup_write_pid_gives_the_variable_to_the_migrated_process(write_policy: WritePolicy) -> None:
    """The reference agent's default policy keys its execution-context
    variables by the process a cgroup write moved (execution_context_cgroup_write)."""
    result = load(write_policy, """rules:
  - id: moved
    expression: cgroup_write.pid > 0
    actions:
      - set: {name: key, expression: '"cgroup_${builtins.uuid4}"', scope: process, scope_field: cgroup_write.pid,
              inherited: true}
  - id: reader
    expression: open.file.path == "/etc/read" && ${process.key} != ""
""")
    assert result.ok and not result.skipped, [(s.id, s.message) for s in result.skipped]
    write = {"type": "cgroup_write", "timestamp": NOW, "process": {"pid": 100, "comm": "runc"},
             "cgroup_write": {"pid": 42, "file": {"path": "/sys/fs/cgroup/x", "name": "x"}}}
    assert matching(result, write) == ["moved"]
    assert "reader" in matching(result, doc_for(42, "cg", path="/etc/read"))
    assert "reader" in matching(result, doc_for(43, "cg", ancestors=(42,), path="/etc/read"))  # inherited
    assert "reader" not in matching(result, doc_for(100, "cg", path="/etc/read"))  # not the writer's


def test_action_problems_skip_the_rule(write_policy: WritePolicy) -> None:
    result = load(write_policy, """rules:
  - id: wrong_type_guard
    expression: open.file.path == "/etc/x"
    actions:
      - filter: exec.file.name == "sh"
        kill: {}
  - id: mistyped
    expression: open.file.path == "/etc/x"
    actions:
      - set: {name: v, value: 1}
  - id: mistyped2
    expression: open.file.path == "/etc/y"
    actions:
      - set: {name: v, expression: open.file.path}
  - id: scope_field_unknown
    expression: open.file.path == "/etc/z"
    actions:
      - set: {name: w, value: 1, scope: process, scope_field: cgroup_write.no_such_field}
  - id: hashed
    expression: exec.file.name == "sh"
    actions:
      - hash: {field: process.file}
      - hash: {}
""")
    assert result.ok, [d.format() for d in result.diagnostics]
    assert skipped(result) == [("wrong_type_guard", "invalid"), ("mistyped2", "invalid"),
                               ("scope_field_unknown", "unknown_field")]
    assert result.ruleset.get("mistyped") is not None  # the first to set v decides its type
    hashed = result.ruleset.get("hashed")
    assert hashed is not None and len(hashed.actions) == 2
    sink = CollectingSink()
    doc = {"type": "exec", "timestamp": NOW, "exec": {"file": {"name": "sh"}}, "process": {"pid": 5}}
    Engine(result.ruleset, [sink])(copy.deepcopy(doc))  # no hasher given (rulec): reported, not computed
    with Engine(result.ruleset, [sink], hasher=Hasher()) as engine:
        engine(copy.deepcopy(doc))
    assert [a["actions"] for a in sink.alerts] == [
        [{"hash": {"field": "process.file.path", "status": "not computed (no hasher)"}},
         {"hash": {"field": "exec.file.path", "status": "not computed (no hasher)"}}],
        [{"hash": {"field": "process.file.path", "status": "error", "reason": "the event has no such file"}},
         {"hash": {"field": "exec.file.path", "status": "error", "reason": "the event has no path for this file"}}]]
