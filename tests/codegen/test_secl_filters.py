"""APIs for the kernel filter compiler: partial evaluation, discarders, approvers."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import pytest

from codegen import ir
from codegen.approvers import compute_approvers, event_type_approvers, rule_approvers
from codegen.fields import ApproverKind
from codegen.partial import (BasenameNotIn, MaskNone, PathsBelow, PrefixNotIn, ValueNotIn, directory_discardable,
                             glob_below, is_discarder, partial_eval)
from codegen.policy import load_policies
from secl_helpers import compile_ok


@dataclass
class R:
    id: str
    ir: ir.Expr


def rule(text: str, rule_id: str = "r") -> R:
    return R(rule_id, compile_ok(text).analysis.expr)


@pytest.mark.parametrize("text, value, expected", [
    ('open.file.path == "/etc/x"', "/etc/x", True),
    ('open.file.path == "/etc/x"', "/etc/y", False),
    ('open.file.path == "/etc/x" && open.flags > 0', "/etc/x", None),
    ('open.file.path == "/etc/x" && open.flags > 0', "/etc/y", False),
    ('open.file.path == "/etc/x" || open.flags > 0', "/etc/x", True),
    ('open.file.path == "/etc/x" || open.flags > 0', "/etc/y", None),
    ('open.file.path != "/etc/x"', "/etc/x", False),
    ('!(open.file.path =~ "/etc/*") && open.flags > 0', "/etc/a", False),
    ('open.file.name == "x"', "/var/x", True),
    ('open.file.name =~ "x*" && open.file.path.length > 3', "/var/xy", True),
    ('open.file.path in ["/a", ~"/b/*"]', "/b/c", True),
    ('open.flags > 0', "/etc/x", None),
    ('open.file.path == process.file.path', "/etc/x", None),
    ('open.file.path == "/proc/${process.pid}"', "/proc/1", None),
])
def test_partial_eval_three_valued(text: str, value: str, expected: bool | None) -> None:
    assert partial_eval(rule(text).ir, "open.file.path", value) is expected


def test_partial_eval_other_field_kinds() -> None:
    assert partial_eval(rule("open.flags & O_RDWR > 0").ir, "open.flags", 2) is True
    assert partial_eval(rule("open.flags & O_RDWR > 0").ir, "open.flags", 1) is False
    assert partial_eval(rule('process.comm == "x" && open.flags > 0').ir, "process.comm", "y") is False


def test_discarders() -> None:
    rules = [rule('open.file.path =~ "/etc/*"'), rule('open.file.name == "shadow" && open.flags > 0')]
    assert is_discarder(rules, "open.file.path", "/var/log/httpd/x")
    assert not is_discarder(rules, "open.file.path", "/etc/passwd")
    assert not is_discarder(rules, "open.file.path", "/var/shadow")
    assert not is_discarder(rules, "open.file.path", "")
    assert is_discarder([], "open.file.path", "/x")


@pytest.mark.parametrize("glob, directory, expected", [
    ("/etc/*", "/etc", None), ("/etc/*", "/var/log", False), ("/etc/*", "/etc/ssh", False),
    ("/etc/**", "/etc/ssh", True), ("/etc/**", "/etc", True), ("/**", "/anything", True),
    ("/var/*/x", "/var/a", None), ("/var/*/x", "/var/a/x", False), ("/var/*/x", "/var/a/y", False),
    ("/*/log/**", "/var/log", True), ("/*/log/**", "/var/lib", False), ("relative/*", "/x", None),
])
def test_glob_below(glob: str, directory: str, expected: bool | None) -> None:
    assert glob_below(glob, directory) is expected


def test_parent_directory_discarders() -> None:
    rules = [rule('open.file.path =~ "/etc/*"'), rule('open.file.path == "/var/log/httpd/access" && open.flags > 0'),
             rule('open.file.path =~ "/usr/**" && open.file.name == "x"')]
    assert directory_discardable(rules, "open.file.path", "/tmp")
    assert directory_discardable(rules, "open.file.path", "/var/lib")
    assert not directory_discardable(rules, "open.file.path", "/var/log")
    assert not directory_discardable(rules, "open.file.path", "/var/log/httpd")
    assert directory_discardable(rules, "open.file.path", "/var/log/httpd/old")
    assert not directory_discardable(rules, "open.file.path", "/etc")
    assert directory_discardable(rules, "open.file.path", "/etc/ssh")
    assert not directory_discardable(rules, "open.file.path", "/usr/lib")
    assert not directory_discardable(rules, "open.file.path", "/")
    assert not directory_discardable(rules, "open.file.path", "relative")
    name_rule = [rule('open.file.name == "shadow"')]
    assert not directory_discardable(name_rule, "open.file.path", "/tmp")
    negated = [rule('open.file.path != "/etc/x"')]
    assert not directory_discardable(negated, "open.file.path", "/tmp")
    assert partial_eval(negated[0].ir, "open.file.path", PathsBelow("/tmp")) is True


def test_symbolic_domains() -> None:
    r = rule('open.file.path in ["/etc/a", "/etc/b"]').ir
    assert partial_eval(r, "open.file.path", BasenameNotIn(frozenset({"a", "b"}))) is False
    assert partial_eval(r, "open.file.path", BasenameNotIn(frozenset({"a"}))) is None
    assert partial_eval(rule('open.file.name == "a"').ir, "open.file.name", ValueNotIn(frozenset({"a"}))) is False
    assert partial_eval(rule("open.flags & 6 > 0").ir, "open.flags", MaskNone(6)) is False
    assert partial_eval(rule("open.flags & 6 > 0").ir, "open.flags", MaskNone(2)) is None
    assert partial_eval(rule("open.flags & 6 == 0").ir, "open.flags", MaskNone(6)) is True


@pytest.mark.parametrize("text, field, values, mask", [
    ('open.file.path == "/etc/shadow"', "open.file.path", {"shadow"}, 0),
    ('open.file.path in ["/etc/passwd", "/etc/*/sudoers"] && process.uid != 0', "open.file.path", {"passwd", "sudoers"}, 0),
    ('open.file.path == "/a/x" || open.file.path =~ "/b/y"', "open.file.path", {"x", "y"}, 0),
    ('open.file.path =~ "/etc/*" && open.flags & O_RDWR > 0', "open.file.path", {"/etc/"}, 0),
    ('process.comm == "x" && open.flags & O_RDWR > 0', "open.flags", set(), 2),
    ("open.flags & (O_CREAT | O_TRUNC) > 0 || open.flags & O_APPEND != 0", "open.flags", set(), 0o3100),
    ("open.flags & O_WRONLY == O_WRONLY", "open.flags", set(), 1),
    ('open.file.name in ["a", "b"] && open.file.path =~ "/x/**"', "open.file.name", {"a", "b"}, 0),
    ('open.file.path == "/etc/x" && !(open.flags & O_RDWR > 0)', "open.file.path", {"x"}, 0),
    ('unlink.file.path == "/etc/x"', "unlink.file.path", {"x"}, 0),
    ('rename.file.destination.path == "/etc/x"', "rename.file.destination.path", {"x"}, 0),
])
def test_rule_approvers(text: str, field: str, values: set[str], mask: int) -> None:
    r = rule(text)
    event_type = field.split(".")[0]
    chosen = rule_approvers("r", r.ir, event_type).chosen
    assert chosen is not None and chosen.field == field
    assert chosen.values == values and chosen.mask == mask


@pytest.mark.parametrize("text, reason", [
    ('open.file.path != "/etc/x"', "open.file.path: negation"),
    ('!(open.file.path == "/etc/x")', "open.file.path: negation"),
    ('open.file.name =~ r"abc"', "open.file.name: regex"),
    ('open.file.path == process.file.path', "open.file.path: compared with another field"),
    ('open.file.path == "/proc/${process.pid}/x"', "open.file.path: compared with a variable"),
    ('open.file.path =~ "/*"', "open.file.path: glob whose basename has '*'"),
    ('open.file.path =~ "/*"', "open.file.path (prefix): ~\"/*\" has no directory prefix below '/'"),
    ('open.file.path =~ "*/x/*"', "open.file.path (prefix): ~\"*/x/*\" is not an absolute path"),
    ('open.file.path =~ "/etc/*" || open.file.path == "relative"', "('relative' is not an absolute path)"),
    ('open.file.name =~ "ab*"', "open.file.name: pattern on a scalar field"),
    ('open.file.path == "/a/b" || open.file.name == "c"', "open.file.path: the rule can match with other values"),
    ('open.file.path == "/a/b" || open.flags & O_RDWR > 0', "open.file.path: the rule can match with other values"),
    ("open.flags & O_RDONLY > 0", "open.flags: zero mask"),
    ("open.flags > 3", "open.flags: operator '>' cannot approve"),
])
def test_rules_without_approvers_say_why(text: str, reason: str) -> None:
    result = rule_approvers("r", rule(text).ir, "open")
    assert result.chosen is None and result.reason is not None and reason in result.reason


def test_event_type_approvers_need_every_rule(write_policy: Callable[..., Path]) -> None:
    rules = [rule('open.file.path == "/etc/shadow"', "a"),
             rule('open.file.path =~ "/etc/*" && open.flags & O_RDWR > 0', "b"),
             rule('open.file.path =~ "/var/*/sudoers" && open.flags & O_CREAT > 0', "c")]
    result = event_type_approvers("open", rules)
    assert result.approvers is not None and result.reason is None
    assert result.approvers["open.file.path"].values == {"shadow", "sudoers"}
    assert result.approvers["open.file.path"].kind is ApproverKind.BASENAME
    assert result.approvers["open.file.path (prefix)"].values == {"/etc/"}
    assert result.approvers["open.file.path (prefix)"].kind is ApproverKind.PREFIX
    assert [r.chosen.key for r in result.rules] == ["open.file.path", "open.file.path (prefix)", "open.file.path"]  # type: ignore[union-attr]
    worse = event_type_approvers("open", rules + [rule('open.file.path != "/x"', "d")])
    assert worse.approvers is None and worse.reason is not None and worse.reason.startswith("rule 'd' offers no approver")
    policy = write_policy("rules:\n  - id: a\n    expression: open.file.path == \"/etc/shadow\"\n"
                          "  - id: b\n    expression: exec.file.name == \"nc\"\n")
    by_type = compute_approvers(load_policies([policy]).ruleset)
    assert sorted(by_type) == ["exec", "open"]
    assert by_type["open"].approvers["open.file.path"].values == {"shadow"}  # type: ignore[index]
    assert by_type["exec"].approvers is None  # exec fields declare no approvers


def test_approvers_are_sound_against_the_evaluator() -> None:
    """An event whose field is outside the approvers never matches the rule."""
    from agent.evaluator.event import DocumentEvent
    r = rule('open.file.path in ["/etc/passwd", "/etc/*/sudoers"] || open.file.path == "/x/y" && open.flags > 0')
    chosen = rule_approvers("r", r.ir, "open").chosen
    assert chosen is not None
    fn = compile_ok('open.file.path in ["/etc/passwd", "/etc/*/sudoers"] || open.file.path == "/x/y" && open.flags > 0')
    for path in ("/etc/passwd", "/etc/a/sudoers", "/x/y", "/etc/shadow", "/x/z", "/etc/passwd2"):
        doc = {"type": "open", "open": {"flags": 1, "file": {"path": path}}}
        if fn.matches(DocumentEvent(doc)):
            assert path.rsplit("/", 1)[1] in chosen.values


def test_mount_rules_get_a_filter_without_discarders(tmp_path: Path) -> None:
    """mount/umount name mount points, not files: no discarder (it used to
    crash looking up 'mount.file.path')."""
    from codegen.cbackend import kernel_filters
    from codegen.policy import load_policies

    p = tmp_path / "m.policy"
    p.write_text('rules:\n  - id: m\n    expression: mount.mountpoint.path == "/mnt/x"\n'
                 '  - id: u\n    expression: umount.retval == 0\n')
    result = load_policies([p])
    assert result.ok
    filters = kernel_filters(result.ruleset)
    assert not filters["mount"].discard and not filters["umount"].discard


# --- path-prefix approvers ---------------------------------------------------------

@pytest.mark.parametrize("value, prefix", [
    ("/etc/passwd", "/etc/"),
    ("/etc/", "/etc/"),
    ("/", "/"),
    ("relative/x", None),
])
def test_literal_dir_prefix_of_paths(value: str, prefix: str | None) -> None:
    from codegen.patterns import literal_dir_prefix
    assert literal_dir_prefix(value) == prefix


@pytest.mark.parametrize("glob, prefix", [
    ("/etc/**", "/etc/"),
    ("/etc/cron.d/*", "/etc/cron.d/"),
    ("/home/*/.ssh/authorized_keys", "/home/"),
    ("/usr/lib/x*/security/*", "/usr/lib/"),
    ("/a/**/b", "/a/"),
    ("/**", "/"),
    ("**", None),
    ("*/etc/*", None),
])
def test_literal_dir_prefix_of_globs(glob: str, prefix: str | None) -> None:
    from codegen.patterns import literal_dir_prefix
    from codegen.patterns import make_glob
    assert literal_dir_prefix(make_glob(glob)) == prefix


@pytest.mark.parametrize("text, prefixes", [
    ('open.file.path =~ "/etc/**"', {"/etc/"}),
    ('open.file.path in [~"/etc/cron.d/*", ~"/var/spool/cron/**"]', {"/etc/cron.d/", "/var/spool/cron/"}),
    ('open.file.path =~ "/etc/*" || open.file.path == "/root/.bashrc"', {"/etc/", "/root/"}),
    ('open.file.path =~ "/home/*/.ssh/*" && process.uid != 0', {"/home/"}),
    ('unlink.file.path =~ "/var/log/**" && unlink.retval == 0', {"/var/log/"}),
    ('rename.file.destination.path =~ "/etc/cron.d/*"', {"/etc/cron.d/"}),
])
def test_prefix_offers(text: str, prefixes: set[str]) -> None:
    r = rule(text)
    event_type = text.split(".")[0]
    chosen = rule_approvers("r", r.ir, event_type).chosen
    assert chosen is not None and chosen.kind is ApproverKind.PREFIX and chosen.values == prefixes


@pytest.mark.parametrize("text", [
    'open.file.path =~ "/etc/**" || open.flags & O_RDWR > 0',     # OR-ed with another field
    '!(open.file.path =~ "/etc/**")',
    'open.file.path =~ "/etc/**" || open.file.path =~ "/**/x*"',   # the second offers '/'
    'open.file.path =~ "/etc/**" || open.file.name =~ "x*"',
])
def test_prefixes_that_would_not_hold_are_not_offered(text: str) -> None:
    result = rule_approvers("r", rule(text).ir, "open")
    assert not result.offers["open.file.path (prefix)"].ok


def test_prefixes_are_sound_against_the_evaluator() -> None:
    """A path outside the offered prefixes never matches the rule."""
    from agent.evaluator.event import DocumentEvent
    text = ('open.file.path in [~"/etc/cron.d/*", "/root/.profile"] || open.file.path =~ "/var/**/x.log" '
            '&& open.flags & O_WRONLY > 0')
    chosen = rule_approvers("r", rule(text).ir, "open").chosen
    assert chosen is not None and chosen.kind is ApproverKind.PREFIX
    assert chosen.values == {"/etc/cron.d/", "/root/", "/var/"}
    fn = compile_ok(text)
    paths = ("/etc/cron.d/a", "/etc/cron.daily/a", "/etc/cron.d", "/root/.profile", "/root2/.profile",
             "/var/x.log", "/var/a/b/x.log", "/varx.log", "/etc/x.log")
    for path in paths:
        doc = {"type": "open", "open": {"flags": 1, "file": {"path": path}}}
        if fn.matches(DocumentEvent(doc)):
            assert any(path.startswith(p) for p in chosen.values), path
    assert partial_eval(rule(text).ir, "open.file.path", PrefixNotIn(frozenset({"/etc/cron.d/"}))) is None
    assert partial_eval(rule(text).ir, "open.file.path", PrefixNotIn(frozenset(chosen.values))) is False


def test_a_prefix_carries_the_flags_conjunct_of_its_rule(write_policy: Callable[..., Path]) -> None:
    """The kernel ANDs a rule's prefix with its flags offer (cbackend): the
    write-opens under /etc only; a rule without flags: any flags."""
    from codegen.cbackend import ANY_FLAGS, PREFIX, kernel_filters
    policy = write_policy(
        "rules:\n"
        '  - id: written\n    expression: open.flags & (O_WRONLY | O_RDWR) > 0 && open.file.path =~ "/etc/**"\n'
        '  - id: truncated\n    expression: open.flags & O_TRUNC > 0 && open.file.path =~ "/etc/cron.d/*"\n'
        '  - id: any\n    expression: open.file.path =~ "/root/**"\n'
        '  - id: shadow\n    expression: open.file.path == "/etc/shadow"\n')
    f = kernel_filters(load_policies([policy]).ruleset)["open"]
    assert f.approve_kinds == ("basename", PREFIX) and f.prefix_field == "open.file.path"
    assert f.basenames == {"shadow"}
    assert f.prefix_masks() == {"/etc/": 0o3, "/etc/cron.d/": 0o1000, "/root/": ANY_FLAGS}
    assert f.manifest()["prefixes"] == {"/etc/": 0o3, "/etc/cron.d/": 0o1000, "/root/": ANY_FLAGS}
    assert "3 path prefix(es) of open.file.path" in f.summary


def test_prefixes_of_fields_the_kernel_does_not_walk_offer_nothing_there(write_policy: Callable[..., Path]) -> None:
    """rename's source has moved by sys_exit: only its destination's prefix
    is checked; a rule on the source's prefix leaves rename without approvers."""
    from codegen.cbackend import kernel_filters
    policy = write_policy("rules:\n  - id: src\n    expression: rename.file.path =~ \"/etc/**\"\n")
    f = kernel_filters(load_policies([policy]).ruleset)["rename"]
    assert not f.approve_kinds
    assert f.reason is not None and "rename.file.path (prefix): not checked in the kernel" in f.reason
# --- exec-name approvers (unlink of the task's own executable) and chmod's mode bits

SELF_DELETING = ("unlink.retval == 0 && (unlink.file.path == process.file.path"
                 " || unlink.file.path == process.parent.file.path)")


@pytest.mark.parametrize("text, field, values", [
    (SELF_DELETING, "unlink.file.path", {"process.file.path", "process.parent.file.path"}),
    ("process.file.path == unlink.file.path", "unlink.file.path", {"process.file.path"}),
    ("unlink.file.name == process.parent.file.name && process.uid == 0", "unlink.file.name",
     {"process.parent.file.name"}),
])
def test_exec_offers(text: str, field: str, values: set[str]) -> None:
    from codegen.approvers import exec_offer
    from codegen.fields import REGISTRY

    offer = exec_offer(rule(text).ir, REGISTRY.fields[field])
    assert offer.ok and offer.kind is ApproverKind.EXEC_BASENAME and offer.values == values


@pytest.mark.parametrize("text, reason", [
    ('unlink.file.path == "/x"', "not compared with the executable's path"),
    ("unlink.file.path == process.file.name", "not compared with the executable's path"),
    ("unlink.file.path != process.file.path", "can match other files"),
    ("!(unlink.file.path == process.file.path)", "can match other files"),
    ('unlink.file.path == process.file.path || unlink.file.name == "x"', "can match other files"),
    ("unlink.file.path == process.ancestors.file.path", "not compared with the executable's path"),
])
def test_exec_offers_refused(text: str, reason: str) -> None:
    from codegen.approvers import exec_offer
    from codegen.fields import REGISTRY

    offer = exec_offer(rule(text).ir, REGISTRY.fields["unlink.file.path"])
    assert not offer.ok and offer.reason is not None and reason in offer.reason


def test_basename_not_of_domain() -> None:
    from codegen.partial import BasenameNotOf

    fields = frozenset({"process.file.path", "process.parent.file.path"})
    assert partial_eval(rule(SELF_DELETING).ir, "unlink.file.path", BasenameNotOf(fields)) is False
    assert partial_eval(rule(SELF_DELETING).ir, "unlink.file.path",
                        BasenameNotOf(frozenset({"process.file.path"}))) is None
    assert partial_eval(rule("unlink.file.path != process.file.path").ir, "unlink.file.path",
                        BasenameNotOf(fields)) is True


def _filters(tmp_path: Path, text: str) -> dict[str, object]:
    from codegen.cbackend import kernel_filters

    p = tmp_path / "p.policy"
    p.write_text(text)
    return kernel_filters(load_policies([p]).ruleset)  # type: ignore[return-value]


def test_the_kinds_of_one_type_compose(tmp_path: Path) -> None:
    """chmod: the mode bits and a basename; unlink: the executable's name and a basename."""
    from codegen.cbackend import BASENAME, EXEC, FLAGS, PREFIX, TypeFilter

    filters = _filters(tmp_path, (
        "rules:\n"
        "  - id: setuid\n"
        "    expression: chmod.file.destination.mode & (S_ISUID | S_ISGID) > 0 && chmod.file.mode & S_IFMT == S_IFREG\n"
        "  - id: sensitive\n"
        '    expression: chmod.file.path in ["/etc/shadow", "/etc/sudoers"]\n'
        "  - id: self\n"
        f"    expression: {SELF_DELETING}\n"
        "  - id: history\n"
        '    expression: unlink.file.name in [".bash_history"]\n'))
    chmod, unlink = filters["chmod"], filters["unlink"]
    assert isinstance(chmod, TypeFilter) and isinstance(unlink, TypeFilter)
    assert chmod.approve_kinds == (BASENAME, FLAGS) and chmod.flags_mask == 0o6000
    assert chmod.basenames == {"shadow", "sudoers"}
    assert unlink.approve_kinds == (BASENAME, EXEC) and unlink.basenames == {".bash_history"}
    assert unlink.exec_fields == {"process.file.path", "process.parent.file.path"}
    # the default policy's unlink rules: the log rule's prefix and the executable's name, OR-ed
    logs = _filters(tmp_path, f"rules:\n  - id: self\n    expression: {SELF_DELETING}\n"
                              '  - id: logs\n    expression: unlink.file.path =~ "/var/log/**"\n')["unlink"]
    assert isinstance(logs, TypeFilter) and logs.approve_kinds == (PREFIX, EXEC)
    # a rule with no approver the kernel can check: nothing is filtered
    worse = _filters(tmp_path, f"rules:\n  - id: self\n    expression: {SELF_DELETING}\n"
                               '  - id: other\n    expression: unlink.file.path != "/x"\n')["unlink"]
    assert isinstance(worse, TypeFilter) and worse.approve_kinds == ()


def test_exec_and_mode_approvers_are_sound_against_the_evaluator() -> None:
    """Random documents: whatever matches passes the kernel's check (the
    file's basename is the process's or its parent's; the mode has a bit of
    the mask)."""
    import random

    from agent.evaluator.event import DocumentEvent

    rng = random.Random(7)
    names = ["sh", "x", "rm", "stage1", "a.out"]
    dirs = ["/tmp", "/usr/bin", "/dev/shm"]
    texts = [SELF_DELETING, "unlink.file.name == process.file.name || unlink.file.path == process.parent.file.path",
             "process.file.path == unlink.file.path && unlink.retval != 0"]
    for text in texts:
        fn = compile_ok(text)
        for _ in range(300):
            paths = [f"{rng.choice(dirs)}/{rng.choice(names)}" for _ in range(3)]
            doc = {"type": "unlink", "unlink": {"retval": rng.choice([0, -2]), "file": {"path": paths[0]}},
                   "process": {"file": {"path": paths[1]}, "ancestors": [{"file": {"path": paths[2]}}]}}
            if fn.matches(DocumentEvent(doc)):
                base = paths[0].rsplit("/", 1)[1]
                assert base in (paths[1].rsplit("/", 1)[1], paths[2].rsplit("/", 1)[1]), (text, paths)
    fn = compile_ok("chmod.file.destination.mode & (S_ISUID | S_ISGID) > 0 && chmod.retval == 0")
    for _ in range(300):
        mode = rng.randrange(0o10000)
        doc = {"type": "chmod", "chmod": {"retval": 0, "file": {"path": "/x", "destination": {"mode": mode}}}}
        assert fn.matches(DocumentEvent(doc)) == bool(mode & 0o6000)
