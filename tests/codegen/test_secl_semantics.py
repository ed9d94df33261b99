"""Semantic pass: names, types, folding, constants, event types, error positions."""
from __future__ import annotations

import pytest

from codegen import ir
from codegen.constants import CAPABILITIES, CONSTANTS, ERRNOS, OPEN_FLAGS, SIGNALS
from codegen.fields import REGISTRY
from codegen.policy import compile_expression
from secl_helpers import compile_ok, errors_of


@pytest.mark.parametrize("text, expected", [
    ('open.file.pth == "x"', [(1, 1, "unknown field 'open.file.pth', did you mean 'open.file.path'?")]),
    ('open.flags == "x"', [(1, 12, "cannot compare int with string")]),
    ('open.file.path =~ r"etc"', [(1, 19, "regular expressions are not allowed on path field 'open.file.path'; use a glob")]),
    ('open.file.path in ["/a", r"b"]', [(1, 26, "regular expressions are not allowed on path field 'open.file.path'; use a glob")]),
    ('open.file.path =~ "/etc/**/x/**"', [(1, 30, "invalid glob: '**' may appear only once in a glob")]),
    ('open.file.path =~ "/etc/a**"', [(1, 26, "invalid glob: '**' must be a whole path segment ('/a/**/b'); "
                                              "use '*' within a segment")]),
    ('open.file.name =~ r"a(b"', [(1, 22, "invalid regular expression: missing ), unterminated subpattern")]),
    ('process.comm == "x" && exec.file.path == "y" && open.flags > 0',
     [(1, 49, "the expression uses fields of two event types, 'exec' and 'open'; a rule applies to exactly one")]),
    ('open.flags > 0 && UNKNOWN_THING', [(1, 19, "unknown identifier 'UNKNOWN_THING' (not a field, macro or constant)")]),
    ('open.file[_].path == "x"', [(1, 10, "'[_]' is only allowed after an iterator (process.ancestors, "
                                  "ptrace.tracee.ancestors, setns.target.ancestors, signal.target.ancestors)")]),
    ('!open.file.path == "x"', [(1, 2, "expected a boolean, got string ('!' applies to the operand right after it: write !(a == b))")]),
    ('open.flags && open.retval == 0', [(1, 1, "expected a boolean, got int")]),
    ('open.file.path + 1 > 0', [(1, 1, "operator '+' needs integers, got string")]),
    ('open.flags in 3', [(1, 15, "'in' needs an array on the right, got int")]),
    ('open.file.path == ["a"]', [(1, 19, "use 'in' to compare with an array")]),
    ('open.flags < "a"', [(1, 12, "operator '<' compares integers, got int and string")]),
    ('open.flags in [1, "a"]', [(1, 19, "mixed types in array: string after int")]),
    ('open.flags in [open.retval]', [(1, 16, "array elements must be constant values")]),
    ('open.flags == ${nope}', [(1, 15, "unknown variable '${nope}'")]),
    ('open.file.path =~ open.file.name', [(1, 16, "operator '=~' compares a string with a pattern, got string and string")]),
    ('open.flags allin [1]', [(1, 12, "'allin' checks IP addresses against an array of CIDRs, got int and int array")]),
    ('open.flags', [(1, 1, "the expression must be a boolean, got int")]),
    ('open.flags + 1', [(1, 1, "the expression must be a boolean, got int")]),
    ('-open.file.path == "x"', [(1, 1, "operator '-' needs an integer, got string")]),
])
def test_errors_with_positions(text: str, expected: list[tuple[int, int, str]]) -> None:
    assert errors_of(text) == expected


def test_all_errors_are_collected() -> None:
    errors = errors_of('open.file.pth == "x" && open.flags == "y" && open.file.path =~ r"z"')
    assert [(line, col) for line, col, _ in errors] == [(1, 1), (1, 36), (1, 64)]


def test_multiline_expression_positions() -> None:
    assert errors_of('open.flags > 0\n  && open.file.pth == "x"') == [
        (2, 6, "unknown field 'open.file.pth', did you mean 'open.file.path'?")]


def test_rules_need_an_event_type() -> None:
    assert errors_of('process.comm == "x"', require_event_type=True) == [
        (1, 1, "cannot infer the event type: use at least one field of an event type (e.g. open.file.path)")]
    assert compile_ok('process.comm == "x"').event_type is None


@pytest.mark.parametrize("text, event_type", [
    ('open.file.path == "/x"', "open"), ("exec.file.name == \"sh\" && process.uid == 0", "exec"),
    ("rename.file.destination.path == \"/x\"", "rename"), ("exit.code != 0", "exit"),
    ("mount.fs_type == \"tmpfs\"", "mount"), ("chmod.file.destination.rights & S_IWOTH > 0", "chmod"),
    ("setxattr.file.destination.namespace == \"security\"", "setxattr"), ("fork.pid > 0", "fork"),
])
def test_event_type_inference(text: str, event_type: str) -> None:
    assert compile_ok(text).event_type == event_type


def test_mixed_and_or_warns_once_at_the_operator() -> None:
    compiled, diags = compile_expression('open.flags > 0 && open.retval == 0 || open.file.name == "a"')
    assert compiled is not None
    assert [(d.severity.value, d.line, d.col) for d in diags] == [("warning", 1, 16)]
    for text in ('(open.flags > 0 && open.retval == 0) || open.file.name == "a"',
                 'open.flags > 0 && (open.retval == 0 || open.file.name == "a")',
                 'open.flags > 0 || open.retval == 0 || open.file.name == "a"'):
        assert not compile_expression(text)[1].items


@pytest.mark.parametrize("text, value", [
    ("10s + 40s == 50s", True), ("1 + 2 == 3", True), ("5 & 3 == 1", True), ("5 | 2 == 7", True),
    ("5 ^ 1 == 4", True), ("^0 == -1", True), ("-(3) == -3", True), ("!(1 == 2)", True),
    ("O_RDWR | O_CREAT == 66", True), ('"a" == "b"', False), ("2 in [1, 2]", True), ("true && false", False),
    ("1h == 60m", True), ("1 == 1 || 2 == 3", True), ("3 not in [1, 2]", True),
])
def test_constant_folding(text: str, value: bool) -> None:
    compiled = compile_ok(text)
    assert compiled.analysis.expr == ir.Const(value, ir.BOOL, compiled.analysis.expr.span)


def test_folding_keeps_the_non_constant_side() -> None:
    expr = compile_ok("open.flags & (O_RDWR | O_CREAT) > 0 && true").analysis.expr
    assert isinstance(expr, ir.Compare)
    assert isinstance(expr.left, ir.Arith) and expr.left.right == ir.Const(66, ir.INT, expr.left.right.span)


def test_constant_on_the_left_is_flipped() -> None:
    expr = compile_ok("0 < open.flags").analysis.expr
    assert isinstance(expr, ir.Compare) and expr.op == ">" and isinstance(expr.left, ir.FieldRef)


def test_durations_on_time_fields_become_relative() -> None:
    expr = compile_ok("process.created_at > 5s").analysis.expr
    assert isinstance(expr, ir.Compare) and isinstance(expr.left, ir.Since)
    absolute = compile_ok("process.created_at > 5").analysis.expr
    assert isinstance(absolute, ir.Compare) and isinstance(absolute.left, ir.FieldRef)


def test_pattern_becomes_glob_on_path_fields_only() -> None:
    on_path = compile_ok('open.file.path =~ "/etc/*"').analysis.expr
    on_name = compile_ok('open.file.name =~ "a*"').analysis.expr
    assert on_path.right.value.kind == "glob" and on_name.right.value.kind == "pattern"  # type: ignore[union-attr]


@pytest.mark.parametrize("name, value", [
    ("O_RDONLY", 0), ("O_WRONLY", 1), ("O_RDWR", 2), ("O_CREAT", 64), ("O_TRUNC", 512), ("O_APPEND", 1024),
    ("O_CLOEXEC", 0o2000000), ("O_PATH", 0o10000000), ("O_TMPFILE", 0o20200000), ("O_LARGEFILE", 0o100000),
    ("S_IFREG", 0o100000), ("S_IFDIR", 0o40000), ("S_ISUID", 0o4000), ("S_IWOTH", 2), ("S_IRWXU", 0o700),
    ("SIGKILL", 9), ("SIGTERM", 15), ("SIGSYS", 31), ("EACCES", 13), ("EPERM", 1), ("ENOENT", 2),
    ("CAP_SYS_ADMIN", 1 << 21), ("CAP_BPF", 1 << 39), ("PTRACE_ATTACH", 16), ("PTRACE_SEIZE", 0x4206),
    ("PROT_EXEC", 4), ("MAP_ANONYMOUS", 0x20), ("AF_INET", 2), ("AF_INET6", 10), ("AF_UNIX", 1),
])
def test_constants_are_linux_x86_64_values(name: str, value: int) -> None:
    assert CONSTANTS[name] == value
    expr = compile_ok(f"open.flags == {name}").analysis.expr
    assert isinstance(expr, ir.Compare) and expr.right.value == value  # type: ignore[union-attr]


def test_constant_families_are_complete() -> None:
    assert len(OPEN_FLAGS) >= 20 and len(SIGNALS) >= 31 and len(ERRNOS) >= 100 and len(CAPABILITIES) == 41


def test_registry_covers_secl_md() -> None:
    file_fields = ["path", "name", "inode", "mount_id", "mode", "rights", "uid", "gid", "user", "group",
                   "filesystem", "in_upper_layer", "change_time", "modification_time", "path.length",
                   "name.length"]
    process_fields = ["pid", "ppid", "tid", "comm", "tty_name", "uid", "gid", "euid", "egid", "fsuid",
                      "fsgid", "user", "group", "cap_effective", "cap_permitted", "cookie", "created_at",
                      "argv", "argv0", "args", "args_truncated", "envs", "envp", "envs_truncated",
                      "is_thread", "is_kworker", "container.id"] + [f"file.{f}" for f in file_fields]
    names = ["container.id", "container.created_at", "cgroup.id", "event.timestamp",
             "process.ancestors.length", "open.flags", "open.file.destination.mode",
             "chmod.file.destination.mode", "chmod.file.destination.rights", "chown.file.destination.uid",
             "chown.file.destination.gid", "chown.file.destination.user", "chown.file.destination.group",
             "mkdir.file.destination.mode", "setxattr.file.destination.name",
             "setxattr.file.destination.namespace", "mount.mountpoint.path", "mount.source.path",
             "mount.fs_type", "exit.code", "exit.cause"]
    for ctx in ("process", "process.parent", "process.ancestors"):
        names += [f"{ctx}.{f}" for f in process_fields]
    for ev in ("open", "chmod", "chown", "mkdir", "rmdir", "unlink", "rename", "link", "utimes",
               "setxattr", "removexattr"):
        names += [f"{ev}.file.{f}" for f in file_fields] + [f"{ev}.retval"]
    names += [f"{ev}.file.destination.{f}" for ev in ("rename", "link") for f in file_fields]
    names += ["mount.retval", "umount.retval"]
    missing = [n for n in names if n not in REGISTRY]
    assert missing == []
    assert REGISTRY.get("process.ancestors.file.name").array  # type: ignore[union-attr]
    assert REGISTRY.get("process.parent.file.path").path == ("process", "ancestors", 0, "file", "path")  # type: ignore[union-attr]
    for et in ("open", "chmod", "chown", "mkdir", "rmdir", "unlink", "rename", "link", "utimes", "setxattr",
               "removexattr", "mount", "umount", "exec", "fork", "exit"):
        assert et in REGISTRY.event_types


def test_builtin_variable_is_the_pid_field() -> None:
    expr = compile_ok('open.file.path == "/proc/${process.pid}/maps"').analysis.expr
    assert isinstance(expr, ir.Compare) and isinstance(expr.right, ir.Template)
    ref = compile_ok("open.flags != ${process.pid}").analysis.expr.right  # type: ignore[union-attr]
    assert isinstance(ref, ir.FieldRef) and ref.via_variable


def test_fields_of_lists_the_fields_a_rule_reads() -> None:
    from codegen.ir import fields_of
    expr = compile_ok('open.file.path == "/x" && process.ancestors.comm == "a" || open.flags > 0').analysis.expr
    assert [f.name for f in fields_of(expr)] == ["open.file.path", "process.ancestors.comm", "open.flags"]
