"""The closure evaluator: operators, types, arrays, iterators, lengths, durations, laziness."""
from __future__ import annotations

from typing import Any

import pytest

from codegen import pybackend
from agent.evaluator.event import DocumentEvent, Lazy
from codegen.policy import compile_expression
from secl_helpers import NOW, OPEN_EVENT, compile_ok, evaluate


@pytest.mark.parametrize("text, expected", [
    # strings: exact, patterns, globs, regexes
    ('open.file.path == "/etc/my_secrets"', True),
    ('open.file.path == "/etc/my_*"', False),
    ('open.file.path =~ "/etc/my_*"', True),
    ('open.file.path == ~"/etc/my_*"', True),
    ('open.file.path =~ "/etc/*"', True),
    ('open.file.path =~ "/*"', False),
    ('open.file.path =~ "/**"', True),
    ('open.file.path =~ "/etc/**"', True),
    ('open.file.path =~ "/usr/**"', False),
    ('open.file.path !~ "/usr/**"', True),
    ('open.file.name =~ "my*"', True),
    ('process.file.path =~ "*cat"', False),
    ('process.comm =~ "*a*"', True),
    ('open.file.name =~ r"^my_s"', True),
    ('open.file.name =~ r"secret"', True),
    ('open.file.name !~ r"^secret"', True),
    ('open.file.name == r"se[c]ret"', True),
    ('open.file.path != "/etc/my_secrets"', False),
    # integers, bit operations, arithmetic, constants
    ("open.flags == 66", True), ("open.flags != 66", False), ("open.flags > 65", True),
    ("open.flags >= 66", True), ("open.flags < 66", False), ("open.flags <= 66", True),
    ("open.flags & O_RDWR > 0", True), ("open.flags & O_WRONLY > 0", False),
    ("open.flags & (O_CREAT | O_RDWR) == O_CREAT | O_RDWR", True),
    ("open.flags | 1 == 67", True), ("open.flags ^ 2 == 64", True), ("^open.flags & 1 == 1", True),
    ("open.flags - 6 == 60", True), ("open.flags + 1 == 67", True), ("-open.flags == -66", True),
    ("open.retval != -EACCES", True), ("open.file.mode & S_IFMT == S_IFREG", True),
    ("open.file.rights == 0o644", True), ("open.file.rights & S_IWOTH == 0", True),
    ("process.cap_effective & CAP_SYS_ADMIN > 0", True), ("process.cap_effective & CAP_BPF > 0", False),
    # booleans
    ("open.file.in_upper_layer == false", True), ("!open.file.in_upper_layer && open.flags > 0", True),
    ("open.file.in_upper_layer", False), ("not open.file.in_upper_layer and open.flags > 0", True),
    # in / not in
    ('open.file.name in ["a", "my_secrets"]', True), ('open.file.name not in ["a", "my_secrets"]', False),
    ('open.file.path in [~"/etc/*", "/x"]', True), ('process.comm in [~"*d*", "aa*"]', False),
    ('process.comm in ["c*"]', False), ('process.comm in [~"c*"]', True), ("open.flags in [1, 66]", True),
    ("open.flags not in [1, 2]", True), ('open.file.name in [r"^my", "x"]', True),
    ('open.file.name in []', False), ('open.file.name not in []', True),
    # arrays: any element matches; negation of the positive form
    ('process.argv == "cat"', True), ('process.argv != "cat"', False), ('process.argv != "dog"', True),
    ('process.argv =~ "/etc/*"', True), ('process.argv in ["x", "/etc/my_secrets"]', True),
    ('"cat" in process.argv', True), ('process.comm in process.argv', True),
    ('process.envs == "HOME"', True), ('process.envp == "PATH=/bin"', True),
    # iterators
    ('process.ancestors.file.name == "bash"', True), ('process.ancestors.file.name == "zsh"', False),
    ('process.ancestors[_].file.name == "bash"', True), ('process.ancestors.pid == 1', True),
    ('process.ancestors.pid > 4000', True), ('process.ancestors.pid > 5000', False),
    ('process.ancestors[_].pid == 1 && process.ancestors[_].file.name == "bash"', True),
    ('process.ancestors.file.path =~ "/usr/bin/*"', True),
    ('process.parent.file.path == "/usr/bin/bash"', True), ('process.parent.pid == 4241', True),
    # lengths
    ("open.file.path.length == 15", True), ("open.file.name.length == 10", True),
    ("process.ancestors.length == 2", True), ("process.argc == 2", True),
    ('process.argv0 == "cat"', True), ('process.args == "/etc/my_secrets"', True),
    # durations relative to the event's timestamp (the process is 10 s old)
    ("process.created_at > 5s", True), ("process.created_at > 15s", False),
    ("process.created_at < 15s", True), ("5s < process.created_at", True),
    ("process.created_at > 5s + 4s", True), ("process.created_at > 10000ms + 1ns", False),
    (f"process.created_at == {NOW - 10_000_000_000}", True), ("event.timestamp > 0", True),
    # variables in strings
    ('open.file.path != "/proc/${process.pid}/maps"', True),
    ('"/proc/${process.pid}/maps" == "/proc/4242/maps" && open.flags > 0', True),
])
def test_operators(text: str, expected: bool) -> None:
    assert evaluate(text) is expected


def test_rule_only_runs_on_its_event_type() -> None:
    compiled = compile_ok("exec.file.name == \"\"")
    assert compiled.matches(OPEN_EVENT) is False


@pytest.mark.parametrize("text, expected", [
    ('open.file.path != "/x"', True), ('open.file.path == ""', True), ("open.flags == 0", True),
    ('process.ancestors.file.name == "bash"', False), ('process.ancestors.file.name != "bash"', True),
    ("process.ancestors.length == 0", True), ("open.file.in_upper_layer == false", True),
    ("process.argv == \"\"", False),
])
def test_missing_fields_are_zero_values(text: str, expected: bool) -> None:
    assert evaluate(text, {"type": "open", "timestamp": NOW}) is expected


def test_wrong_json_types_read_as_zero_values() -> None:
    doc = {"type": "open", "open": {"flags": "66", "file": {"path": 5}}, "process": {"argv": "cat"}}
    assert evaluate('open.flags == 0 && open.file.path == "" && process.argv == "cat"', doc)


def test_bind_addresses_and_allin() -> None:
    doc = {"type": "bind", "bind": {"addr": {"ip": "10.1.2.3", "port": 80}}}
    assert evaluate("bind.addr.ip == 10.0.0.0/8", doc)
    assert evaluate("bind.addr.ip in [192.168.0.0/16, 10.1.2.3]", doc)
    assert evaluate("bind.addr.ip allin [10.0.0.0/8]", doc)
    assert not evaluate("bind.addr.ip allin [192.168.0.0/16]", doc)
    assert not evaluate("bind.addr.ip == ::1", doc)
    assert evaluate("bind.addr.ip != 10.1.2.4", doc)


class Counter:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def lazy(self, name: str, value: Any) -> Lazy:
        def make() -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return value
        return Lazy(make)


def test_fields_are_resolved_lazily_and_once() -> None:
    c = Counter()
    doc = {"type": "open", "timestamp": NOW,
           "open": {"flags": 0, "file": c.lazy("file", {"path": "/etc/x", "name": c.lazy("name", "x")})},
           "process": c.lazy("process", {"comm": "cat", "ancestors": [c.lazy("a0", {"comm": "bash"})]})}
    # cheap operand first: flags is 0, so nothing else is read
    compiled = compile_ok('process.ancestors.comm == "bash" && open.file.name == "x" && open.flags > 0')
    assert compiled.matches(DocumentEvent(doc)) is False
    assert c.calls == {}
    ev = DocumentEvent(doc)
    both = compile_ok('open.file.path == "/etc/x" && open.file.name == "x" && open.file.path != "/y"')
    assert both.matches(ev) and both.matches(ev)
    assert c.calls == {"file": 1, "name": 1}
    assert doc["open"]["file"]["name"] == "x"  # type: ignore[index]  # memoized in place
    assert ev.cache["open.file.path"] == "/etc/x"


def test_or_short_circuits_on_the_cheap_side() -> None:
    c = Counter()
    doc = {"type": "open", "open": {"flags": 2}, "process": c.lazy("process", {"ancestors": []})}
    assert evaluate('process.ancestors.comm == "x" || open.flags == 2', doc)
    assert c.calls == {}


def test_weights_order_cheap_first() -> None:
    w = {text: pybackend.weight(compile_ok(text).analysis.expr) for text in (
        "open.flags == 1", 'process.argv == "a"', "open.file.rights == 1", 'open.file.name =~ r"a"',
        'open.file.name in [~"a*", "b"]', 'process.ancestors.comm == "a"')}
    assert list(w.values()) == sorted(w.values()) and len(set(w.values())) == len(w)


@pytest.mark.parametrize("name, extension", [
    ("config.yaml", ".yaml"), ("a.tar.gz", ".gz"), ("Makefile", ""), (".bashrc", ".bashrc"), ("trail.", "."),
])
def test_file_extension_is_the_basename_from_its_last_dot(name: str, extension: str) -> None:
    """`*.file.extension`, as the reference agent's default policy compares it
    (`open.file.extension in [".yaml", ".yml"]`): from `name`, or `path` when absent."""
    expr = compile_ok(f'open.file.extension == "{extension}"')
    assert expr.matches({"type": "open", "open": {"file": {"path": f"/etc/k8s/{name}"}}})
    assert expr.matches({"type": "open", "open": {"file": {"name": name, "path": "/x/other.conf"}}})
    assert not compile_ok('open.file.extension in [".yaml", ".yml"]').matches(
        {"type": "open", "open": {"file": {"path": "/etc/yaml"}}})
    assert compile_ok('exec.file.extension == ".sh" && process.parent.file.extension == ""').matches(
        {"type": "exec", "exec": {"file": {"path": "/tmp/run.sh"}},
         "process": {"ancestors": [{"file": {"path": "/usr/bin/bash"}}]}})


@pytest.mark.parametrize("cause", ["EXITED", "SIGNALED", "COREDUMPED"])
def test_exit_cause_constants(cause: str) -> None:
    """`exit.cause == COREDUMPED`, as the reference agent's default policy writes it."""
    expr = compile_ok(f"exit.cause == {cause}")
    assert expr.matches({"type": "exit", "exit": {"cause": cause, "code": 11}})
    others = {"EXITED", "SIGNALED", "COREDUMPED"} - {cause}
    assert not any(expr.matches({"type": "exit", "exit": {"cause": c, "code": 11}}) for c in others)


def _with_services(own: str | None, *ancestors: tuple[str | None, str]) -> dict[str, Any]:
    """An exec event whose process has DD_SERVICE=own and ancestors (service, container id)."""
    def proc(service: str | None, container: str) -> dict[str, Any]:
        envp = ["PATH=/usr/bin"] + ([f"DD_SERVICE={service}"] if service is not None else [])
        return {"envp": envp, "container": {"id": container}}
    me = proc(own, ancestors[0][1] if ancestors else "")
    me["ancestors"] = [proc(s, c) for s, c in ancestors]
    return {"type": "exec", "exec": {}, "process": me}


@pytest.mark.parametrize("doc, service", [
    (_with_services("billing"), "billing"),
    (_with_services(None, ("billing", "")), "billing"),                         # inherited from the parent
    (_with_services("billing", ("billing-api", "")), "billing-api"),            # a prefix chain: the longest
    (_with_services("web", ("billing", "")), "web"),                            # disjoint: the closest
    (_with_services(None, ("", "c1"), ("billing", "")), ""),                    # not across the container's edge
    (_with_services(None, ("a", "c1"), ("", "c1")), "a"),                       # within the container
    (_with_services(None), ""),
])
def test_event_service_is_dd_service_of_the_process_or_its_ancestors(doc: dict[str, Any], service: str) -> None:
    assert evaluate(f'event.service == "{service}"', doc)
    assert evaluate('event.service != "x-other"', doc)


def test_fields_without_a_source_load_with_a_warning_and_read_empty() -> None:
    for text in ('exec.user_session.k8s_username != ""', '"tags.datadoghq.com/service" in container.tags'):
        compiled, diags = compile_expression(text)
        assert compiled is not None and not diags.errors
        assert [d.col for d in diags] == [text.index("exec.") + 1 if "exec." in text else text.index("container.") + 1]
        assert "always empty on this agent" in next(iter(diags)).message
        assert not compiled.matches({"type": "exec", "exec": {}, "process": {}})


@pytest.mark.parametrize("text, path, expected", [
    ('open.file.path =~ "/home/%{process.comm}/*"', "/home/a*/x", True),
    ('open.file.path =~ "/home/%{process.comm}/*"', "/home/abc/x", False),    # the value's * is no wildcard
    ('open.file.path =~ ~"/srv/%{process.comm}/**"', "/srv/a*/d/e", True),
    ('open.file.path =~ ~"/srv/%{process.comm}/**"', "/srv/ab/d/e", False),
    ('open.file.name =~ "%{process.comm}*"', "a*.log", True),                 # a pattern: * spans anything
    ('open.file.name =~ "%{process.comm}*"', "abc.log", False),
])
def test_interpolated_values_are_literal_in_patterns_and_globs(text: str, path: str, expected: bool) -> None:
    """`%{field}` and `${variable}` inside a pattern or glob: the pattern's own `*`
    are wildcards, the value's are matched as written (a process named `a*` does
    not turn the rule into a prefix match)."""
    doc = {"type": "open", "open": {"file": {"path": path, "name": path.rsplit("/", 1)[-1]}},
           "process": {"comm": "a*"}}
    assert evaluate(text, doc) is expected
