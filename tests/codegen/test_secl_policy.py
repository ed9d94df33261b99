"""Policies: macros, combine/override/merge/disable, directories, actions, filters, errors."""
from __future__ import annotations

from pathlib import Path
from collections.abc import Callable

import pytest


from codegen.actions import KillAction, SetAction
from codegen.eventtypes import EVENT_TYPES
from codegen.hostinfo import host_document
from codegen.policy import LoadResult, load_policies, policy_files
from secl_helpers import NOW, OPEN_EVENT, open_event

WritePolicy = Callable[..., Path]


def errors(result: LoadResult) -> list[tuple[int, int, str]]:
    """The policy's errors and those that left rules and macros out."""
    return [(d.line, d.col, d.message) for d in result.problems().sorted() if d.is_error]


def warnings(result: LoadResult) -> list[tuple[int, int, str]]:
    return [(d.line, d.col, d.message) for d in result.diagnostics.sorted() if not d.is_error]


EXAMPLE = """version: 1.0.0
macros:
  - id: shells
    values: ["bash", "sh", "dash", "zsh"]
  - id: webapp_child
    expression: process.ancestors.file.path == "/usr/local/bin/webapp"
rules:
  - id: exec_shell_from_webapp
    description: Execution of a remote shell
    expression: webapp_child && exec.file.name in shells
    tags: {technique: T1059.004, severity: high}
    disabled: false
    every: 10s
    actions:
      - kill: {signal: SIGKILL}
      - set: {name: seen, value: true, scope: process}
    filters: ["kernel.version.major >= 5"]
  - id: secrets
    expression: open.file.path =~ "/etc/*" && open.flags & O_RDWR > 0
"""


def test_secl_md_example_loads(write_policy: WritePolicy) -> None:
    result = load_policies([write_policy(EXAMPLE)])
    assert result.ok and not result.diagnostics.items
    rule = result.ruleset.get("exec_shell_from_webapp")
    assert rule is not None and rule.event_type == "exec"
    assert rule.tags == {"technique": "T1059.004", "severity": "high"}
    assert rule.every == 10_000_000_000 and rule.filters == ("kernel.version.major >= 5",)
    kill, set_ = rule.actions
    assert isinstance(kill, KillAction) and (kill.signal, kill.signal_number, kill.scope) == ("SIGKILL", 9, "process")
    assert isinstance(set_, SetAction) and set_.variable == "process.seen" and set_.value is True
    assert (kill.position.line, kill.position.col) == (15, 9)
    assert result.ruleset.rules_for("open")[0].id == "secrets"
    assert result.ruleset.evaluate(OPEN_EVENT) == ["secrets"]
    exec_event = {"type": "exec", "exec": {"file": {"name": "bash"}},
                  "process": {"ancestors": [{"file": {"path": "/usr/local/bin/webapp"}}]}}
    assert result.ruleset.evaluate(exec_event) == ["exec_shell_from_webapp"]
    assert rule.matches(exec_event) and not rule.matches(OPEN_EVENT)


def test_host_filters(write_policy: WritePolicy) -> None:
    path = write_policy(EXAMPLE)
    old = host_document(release="4.19.0-amd64", os_release="ID=debian\nVERSION_ID=10\n")
    new = host_document(release="6.1.0-18-amd64", os_release="ID=debian\n")
    assert load_policies([path], host=old).filtered_out == ["exec_shell_from_webapp"]
    assert load_policies([path], host=new).filtered_out == []
    assert new["kernel"]["version"] == {"major": 6, "minor": 1, "patch": 0, "abi": 18, "flavor": "18-amd64"}


def test_bad_host_filter_is_reported(write_policy: WritePolicy) -> None:
    result = load_policies([write_policy("""rules:
  - id: a
    expression: open.flags > 0
    filters: ["kernel.version.mjor >= 5", "os.id == 3"]
""")])
    assert errors(result) == [
        (4, 16, "unknown field 'kernel.version.mjor', did you mean 'kernel.version.major'?"),
        (4, 50, "cannot compare string with int")]


def test_all_errors_with_file_positions(write_policy: WritePolicy) -> None:
    result = load_policies([write_policy("""rules:
  - id: one
    expression: open.file.pth == "x"
  - id: two
    expression: >-
      open.flags > 0
      && open.flags == "x"
  - id: bad id
    expression: open.flags > 0
  - id: one
    expression: open.flags > 1
  - id: no_expression
  - expression: open.flags > 0
  - id: regex
    expression: 'open.file.path =~ r"x"'
""", name="p.policy")])
    assert errors(result) == [
        (3, 17, "unknown field 'open.file.pth', did you mean 'open.file.path'?"),
        (7, 21, "cannot compare int with string"),
        (8, 9, "invalid rule ID 'bad id': use letters, digits and '_' ([a-zA-Z0-9_]+)"),
        (10, 9, f"rule 'one' is already defined at {result.files[0]}:2:9; use combine: override, or only 'disabled' to switch it"),
        (12, 9, "rule 'no_expression' has no expression"),
        (13, 5, "rule without an 'id'"),
        (15, 36, "regular expressions are not allowed on path field 'open.file.path'; use a glob"),
    ]
    printed = result.problems().sorted()[0].format()
    assert printed == (f"{result.files[0]}:3:17: error: unknown field 'open.file.pth', did you mean 'open.file.path'?\n"
                       '    expression: open.file.pth == "x"\n'
                       "                ^")


def test_invalid_rules_are_left_out_valid_ones_load(write_policy: WritePolicy) -> None:
    result = load_policies([write_policy("rules:\n  - id: a\n    expression: open.flgs > 0\n"
                                         "  - id: b\n    expression: open.flags > 0\n")])
    assert result.ok and [r.id for r in result.ruleset.rules] == ["b"]
    (skipped,) = result.skipped
    assert (skipped.id, skipped.reason, skipped.position.line, skipped.position.col) == ("a", "unknown_field", 3, 17)
    assert skipped.format().endswith(":3:17: rule 'a' not loaded (unknown_field): unknown field 'open.flgs', "
                                     "did you mean 'open.flags'?")


def test_directory_order_and_extensions(tmp_path: Path, write_policy: WritePolicy) -> None:
    for name in ("b.yaml", "a.policy", "default.policy", "c.yml", "notes.txt", "z.policy"):
        write_policy("rules: []\n", name=name)
    assert [p.name for p in policy_files(tmp_path)] == ["default.policy", "a.policy", "b.yaml", "c.yml", "z.policy"]


DEFAULT = """macros:
  - id: sensitive
    values: ["/etc/shadow"]
  - id: root
    expression: process.uid == 0
rules:
  - id: read_sensitive
    expression: open.file.path in sensitive && root
    tags: {severity: high}
    every: 1m
  - id: writes
    expression: open.flags & O_WRONLY > 0
"""


def test_local_policy_merges_overrides_and_disables(tmp_path: Path, write_policy: WritePolicy) -> None:
    write_policy(DEFAULT, name="default.policy")
    write_policy("""macros:
  - id: sensitive
    values: ["/etc/my_secrets"]
    combine: merge
  - id: root
    expression: process.uid == 1000
    combine: override
rules:
  - id: writes
    disabled: true
  - id: read_sensitive
    combine: override
    override_options:
      fields: [tags, every]
    tags: {severity: low}
    every: 5s
    expression: this is not used
""", name="local.policy")
    result = load_policies([tmp_path])
    assert result.ok, errors(result)
    assert [r.id for r in result.ruleset.rules] == ["read_sensitive"]
    rule = result.ruleset.rules[0]
    assert rule.tags == {"severity": "low"} and rule.every == 5_000_000_000
    assert result.macros["sensitive"].expr.value == ("/etc/shadow", "/etc/my_secrets")  # type: ignore[union-attr]
    assert not rule.matches(OPEN_EVENT)  # root is now uid 1000
    assert rule.matches(open_event(process__uid=1000))


def test_override_replaces_expression_by_default(tmp_path: Path, write_policy: WritePolicy) -> None:
    write_policy(DEFAULT, name="default.policy")
    write_policy("rules:\n  - id: writes\n    combine: override\n    expression: open.flags & O_RDWR > 0\n",
                 name="local.policy")
    result = load_policies([tmp_path])
    assert result.ok and result.ruleset.get("writes").expression == "open.flags & O_RDWR > 0"  # type: ignore[union-attr]
    assert result.ruleset.get("writes").tags == {}  # type: ignore[union-attr]


def test_combine_errors(tmp_path: Path, write_policy: WritePolicy) -> None:
    write_policy(DEFAULT, name="default.policy")
    write_policy("""macros:
  - id: root
    values: [1]
    combine: merge
  - id: sensitive
    values: [x]
rules:
  - id: writes
    combine: override
    override_options: {fields: [tags, nonsense]}
  - id: read_sensitive
    combine: replace
    expression: open.flags > 0
""", name="local.policy")
    result = load_policies([tmp_path])
    default = result.files[0]
    assert errors(result) == [
        (2, 9, f"combine: merge needs list macros ('values'); 'root' was defined at {default}:4:9"),
        (5, 9, f"macro 'sensitive' is already defined at {default}:2:9; use combine: override or merge"),
        (8, 9, "rule 'writes' overrides 'tags' but does not define it"),
        (10, 39, "cannot override 'nonsense' (expected one of: all, expression, actions, every, tags, filters, description, disabled)"),
        (11, 9, f"rule 'read_sensitive' is already defined at {default}:7:9; use combine: override, or only 'disabled' to switch it"),
        (12, 14, "invalid combine 'replace' (expected override or merge)"),
    ]


def test_macro_errors_and_cycles(write_policy: WritePolicy) -> None:
    result = load_policies([write_policy("""macros:
  - id: a
    expression: b && open.flags > 0
  - id: b
    expression: a
  - id: broken
    expression: open.flgs > 0
  - id: mixed
    values: [1, "x"]
  - id: both
    expression: x
    values: [1]
rules:
  - id: r
    expression: broken && open.flags > 0
""")])
    assert errors(result) == [
        (2, 9, "macro 'a' refers to itself (a -> b -> a)"),
        (3, 17, "macro 'b' is invalid (see its errors)"),
        (5, 17, "macro 'a' is invalid (see its errors)"),
        (7, 17, "unknown field 'open.flgs', did you mean 'open.flags'?"),
        (9, 17, "mixed types in list macro 'mixed': string after int"),
        (10, 9, "macro 'both' needs exactly one of 'expression' or 'values'"),
        (15, 17, "macro 'broken' is invalid (see its errors)"),
    ]


def test_actions_are_validated(write_policy: WritePolicy) -> None:
    result = load_policies([write_policy("""rules:
  - id: a
    expression: open.flags > 0
    actions:
      - kill: {signal: SIGNOPE}
      - kill: {signal: SIGKILL, scope: cluster}
      - set: {name: "bad name", value: 1}
      - set: {name: v, value: 1, field: open.flags}
      - set: {name: w, value: [], scope: process}
      - set: {name: t, value: 1, ttl: soon}
      - set: {name: u, field: open.nope}
      - explode: {}
      - set: {name: x, value: 1, colour: red}
      - hash: {}
      - kill:
""")])
    assert errors(result) == [
        (5, 24, "unknown signal 'SIGNOPE' (expected a SIG* name such as SIGKILL)"),
        (6, 40, "invalid kill scope 'cluster' (expected process or container)"),
        (7, 21, "'set' needs a variable name ([A-Za-z0-9_.]+), got 'bad name'"),
        (8, 14, "'set' needs exactly one of 'value', 'field' or 'expression'"),
        (9, 31, "a variable's value is a boolean, an integer, a string or a non-empty list of one of those"),
        (10, 39, "invalid ttl 'soon' (a duration such as 10s, 5m, 1h)"),
        (11, 31, "unknown field 'open.nope'"),
        (12, 9, "unknown action 'explode' (expected kill, set or hash)"),
        (13, 34, "unknown set option 'colour' (expected one of: name, value, field, expression, scope, scope_field, "
                 "append, size, ttl, default_value, inherited, private)"),
    ]
    assert result.ruleset.get("a") is None  # a rule whose definition has errors is not loaded
    ok = load_policies([write_policy("rules:\n  - id: a\n    expression: open.flags > 0\n"
                                     "    actions:\n      - hash: {}\n      - kill:\n", name="ok.policy")])
    rule = ok.ruleset.get("a")
    assert rule is not None and [type(a).__name__ for a in rule.actions] == ["HashAction", "KillAction"]
    assert rule.actions[1].signal == "SIGTERM"  # type: ignore[union-attr]


def test_set_variables_are_typed_and_usable(write_policy: WritePolicy) -> None:
    result = load_policies([write_policy("""rules:
  - id: mark
    expression: open.file.path == "/etc/my_secrets"
    actions:
      - set: {name: seen, value: true, scope: process}
      - set: {name: paths, field: open.file.path, append: true, size: 2}
      - set: {name: recent, value: 1, ttl: 5s}
  - id: after
    expression: open.flags > 0 && ${process.seen} && "/etc/my_secrets" in ${paths} && ${recent} == 1
  - id: typo
    expression: open.flags > 0 && ${process.sen}
""")])
    assert errors(result) == [(11, 35, "unknown variable '${process.sen}'")]
    rs = result.ruleset
    assert rs.evaluate(open_event(open__file__path="/x")) == []
    assert rs.evaluate(OPEN_EVENT) == ["mark", "after"]
    later = open_event(open__file__path="/x", timestamp=NOW + 6_000_000_000)
    assert rs.evaluate(later) == []  # `recent` expired (ttl 5s)
    other_process = open_event(open__file__path="/x", process__pid=1)
    assert rs.evaluate(other_process) == []


def test_variable_type_conflict(write_policy: WritePolicy) -> None:
    result = load_policies([write_policy("""rules:
  - id: a
    expression: open.flags > 0
    actions:
      - set: {name: v, value: 1}
      - set: {name: v, value: "x"}
""")])
    (err,) = errors(result)
    assert err[:2] == (6, 9) and err[2].startswith("variable 'v' set as string here and as int at")


def test_rule_fields_are_validated(write_policy: WritePolicy) -> None:
    result = load_policies([write_policy("""version: 1
surprise: 1
rules:
  - id: a
    expression: open.flags > 0
    every: often
    disabled: maybe
    tags: [x]
    filters: "kernel.version.major > 1"
    colour: blue
    agent_version: ">= 7"
  - id: b
    expression: 5
macros: 3
""")])
    assert errors(result) == [
        (6, 12, "invalid 'every' 'often': a duration such as 10s, 5m, 1h"),
        (7, 15, "'disabled' must be true or false"),
        (8, 11, "'tags' must be a mapping"),
        (9, 14, "'filters' must be a list of expressions"),
        (12, 9, "rule 'b' has no expression"),
        (13, 17, "an expression must be a string"),
        (14, 9, "'macros' must be a list"),
    ]
    assert warnings(result) == [(2, 1, "unknown policy key 'surprise' ignored"),
                                (10, 5, "unknown rule key 'colour' ignored")]


def test_not_a_mapping_and_missing_file(tmp_path: Path, write_policy: WritePolicy) -> None:
    result = load_policies([write_policy("- a\n- b\n"), tmp_path / "missing.policy"])
    assert [m for _, _, m in errors(result)] == [
        "no such file or directory", "a policy is a mapping with 'version', 'macros' and 'rules'"]


def test_rule_ids_are_unique_within_a_file_and_every_is_a_duration(write_policy: WritePolicy) -> None:
    result = load_policies([write_policy("rules:\n  - id: a\n    expression: open.flags > 0\n    every: 1m30s\n")])
    assert result.ruleset.get("a").every == 90_000_000_000  # type: ignore[union-attr]


def test_durations() -> None:
    from codegen.durations import parse_duration
    assert [parse_duration(v) for v in ("10s", "1m30s", "500ms", "2h", "1.5s", 3, 0.5)] == [
        10**10, 90 * 10**9, 5 * 10**8, 7200 * 10**9, 15 * 10**8, 3 * 10**9, 5 * 10**8]
    assert [parse_duration(v) for v in ("", "5x", "s", -1, float("inf"), float("nan"), True, None)] == [None] * 8


def test_every_infinite_is_an_error(write_policy: WritePolicy) -> None:
    result = load_policies([write_policy("rules:\n  - id: a\n    expression: open.flags > 0\n    every: .inf\n")])
    assert errors(result) == [(4, 12, "invalid 'every' inf: a duration such as 10s, 5m, 1h")]


def test_rule_on_a_type_the_agent_does_not_produce_is_skipped(write_policy: WritePolicy,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # a type the table declares (for rules written for the reference agent) but nothing produces; the
    # table produces every type it declares now, so one is taken for such a type
    declared = next(t for t in EVENT_TYPES if any(f.suffix == "retval" for f in t.fields))
    monkeypatch.setattr("codegen.semantics.produced", lambda name: name != declared.name)
    path = write_policy(f"rules:\n  - id: t\n    expression: {declared.name}.retval != 0\n")
    result = load_policies([path])
    assert result.ok and [(s.id, s.reason) for s in result.skipped] == [("t", "unsupported_type")]
    assert errors(result) == [(3, 17, f"event type '{declared.name}' is not produced by this agent: rules on it "
                                      "cannot fire (docs/fields.md lists the types it produces)")]
