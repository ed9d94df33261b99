"""Whatever `rulec validate` accepts, the agent loads: every field of every
event type the agent produces, in each operator shape the field's type
allows, through `rulec validate` -> `rulec compile` -> `rsagent run` start.

Generated from the field registry (codegen.fields.REGISTRY) and the event
types the agent produces (codegen.kernel_limits.kernel_event_types). Cost
kept small: the rules go into a few policies of one filter shape each (every
type without approvers; every type with each kind of kernel approver), so
clang compiles once per shape, and the agent starts once per policy.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codegen import limits
from codegen.cbackend import kernel_check
from codegen.fields import REGISTRY, ApproverKind, Field, FieldType
from codegen.kernel_limits import kernel_event_types
from codegen.policy import load_policies

pytestmark = pytest.mark.root
RULEC = str(Path(sys.executable).parent / "rulec")
RSAGENT = str(Path(sys.executable).parent / "rsagent")
# Rules are about loading, not alerting: each also requires a command name no
# process has (not a kernel approver, so the filter shapes stay the same).
GUARD = 'process.comm == "rsagent-never"'
START_SECONDS = 180  # a start with 4 000+ rules on a loaded 2-core machine


def start_and_stop(policy: Path, compiled: Path, workdir: Path) -> str:
    """`rsagent run --compiled` until it is ready, then SIGTERM; its stderr."""
    ready = workdir / "ready"
    ready.unlink(missing_ok=True)
    log = workdir / "agent.log"  # a file, not a pipe: the filter summary of 4 000 rules is one long line
    with open(log, "w") as err:
        proc = subprocess.Popen([RSAGENT, "run", "-v", "--policy", str(policy), "--compiled", str(compiled),
                                 "--ready-file", str(ready), "--output", f"jsonl:{workdir / 'alerts.jsonl'}"],
                                stdout=subprocess.DEVNULL, stderr=err, text=True)
        try:
            deadline = time.monotonic() + START_SECONDS
            while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            started = ready.exists()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
    stderr = log.read_text()
    assert started, stderr[-3000:]
    assert proc.returncode == 0, stderr[-3000:]
    return stderr


def _int_shapes(f: Field) -> list[str]:
    n = f.name
    shapes = [f"{n} == 1", f"{n} != 1", f"{n} in [1, 2]", f"{n} not in [1, 2]", f"{n} < 5", f"{n} >= 0"]
    if not f.array:
        shapes.append(f"{n} & 1 > 0")  # bit test: arithmetic needs a scalar
    if f.time:
        shapes.append(f"{n} > 5s")
    return shapes


def _string_shapes(f: Field) -> list[str]:
    n = f.name
    shapes = [f'{n} == "x"', f'{n} != "x"', f'{n} in ["x", "y"]', f'{n} not in ["x", "y"]']
    if f.glob:  # a glob on path fields; regexes are refused there
        return shapes + [f'{n} =~ "/x/*"', f'{n} !~ "/x/**"', f'{n} in [~"/x/*/y", "/z"]']
    return shapes + [f'{n} =~ "x*"', f'{n} !~ "*x"', f'{n} =~ r"^x"', f'{n} in [~"x*", "y"]']


SHAPES = {
    FieldType.INT: _int_shapes,
    FieldType.STRING: _string_shapes,
    FieldType.BOOL: lambda f: [f.name, f"!{f.name}", f"{f.name} == true", f"{f.name} != false"],
    FieldType.IP: lambda f: [f"{f.name} == 10.0.0.1", f"{f.name} in [10.0.0.0/8]", f"{f.name} allin [::/0]"],
}


def _anchor(event_type: str) -> str:
    """A condition on one of the type's own fields (the rule's event type), approving nothing."""
    own = sorted(f.name for f in REGISTRY.fields_of(event_type)
                 if f.event_type == event_type and f.type is FieldType.INT and not f.array)
    name = f"{event_type}.retval" if f"{event_type}.retval" in REGISTRY else own[0]
    return f"{name} >= 0"


def every_field_rules() -> list[tuple[str, str, str]]:
    """(event type, field, expression) for every field of every type, in each operator shape."""
    out = []
    for event_type in kernel_event_types():
        anchor = _anchor(event_type)
        for f in sorted(REGISTRY.fields_of(event_type), key=lambda f: f.name):
            for shape in SHAPES[f.type](f):
                out.append((event_type, f.name, f"({shape}) && {anchor} && {GUARD}"))
    return out


def approver_rules() -> list[tuple[str, str]]:
    """Every shape of every field the kernel approves on (each rule offers an approver)."""
    out = []
    for event_type in kernel_event_types():
        for f in REGISTRY.approvable(event_type):
            assert f.approver is not None
            if kernel_check(f.name, f.approver.kind) is None:
                continue
            n = f.name
            if f.type is FieldType.INT and f.approver.kind is ApproverKind.SCALAR:  # a value, in the field's range
                shapes = [f"{n} == 53", f"{n} in [53, 4444]"]
            elif f.type is FieldType.INT:  # bit masks, every bit of the field (up to the kernel map's u64)
                every_bit = min(limits.field_range(n).high, 2**64 - 1)
                shapes = [f"{n} & O_WRONLY > 0", f"{n} & 0x{every_bit:X} > 0", f"{n} == 2",
                          f"({n} & O_CREAT) == O_CREAT"]
            elif f.type is FieldType.IP:  # an address approver (LPM trie): addresses and CIDRs, both families
                shapes = [f"{n} == 10.0.0.1", f"{n} in [10.0.0.0/8, fd00::/8]", f"{n} == ::1"]
            elif f.glob:
                shapes = [f'{n} == "/etc/{event_type}-a"', f'{n} in ["/etc/b", "/x/{"n" * 200}"]',
                          f'{n} =~ "/etc/*/{event_type}-c"']
            else:
                shapes = [f'{n} == "{event_type}-e"', f'{n} in ["f", "{"g" * 255}"]']
            out += [(event_type, f"{s} && {GUARD}") for s in shapes]
    return out


def _write(path: Path, rules: list[tuple[str, str]]) -> Path:
    lines = ["rules:"]
    for i, (event_type, expression) in enumerate(rules):
        lines += [f"  - id: {event_type}_{i}", "    expression: " + repr(expression).replace("\\\\", "\\")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _policies(tmp_path: Path) -> list[tuple[str, Path]]:
    """(shape name, policy): the every-field rules cut in policies of the
    rule limit, each holding rules of every type (so they share one shape)."""
    rules = [(t, e) for t, _, e in every_field_rules()]
    chunks = -(-len(rules) // limits.MAX_RULES)
    out = [("no approvers", _write(tmp_path / f"fields{c}.policy", rules[c::chunks])) for c in range(chunks)]
    out.append(("approvers", _write(tmp_path / "approvers.policy", approver_rules())))
    return out


@pytest.mark.parametrize("which", [
    "approvers",
    # thousands of rules of every type: a few minutes (make test-slow)
    pytest.param("no approvers", marks=pytest.mark.slow),
])
def test_every_field_validates_compiles_and_loads(which: str, tmp_path: Path, built_objects: None) -> None:
    compiled: dict[str, Path] = {}
    for shape, policy in _policies(tmp_path):
        if shape != which:
            continue
        result = load_policies([policy])                                    # rulec validate
        assert result.ok and not result.failed, [d.format() for d in result.problems().items[:5]]
        types = set(result.ruleset.event_types)
        if shape == "no approvers":  # (the approver policy holds the types with kernel approvers only)
            assert types == set(kernel_event_types()), types
        out = compiled.setdefault(shape, tmp_path / f"compiled-{len(compiled)}")
        proc = subprocess.run([RULEC, "compile", str(policy), "-o", str(out)],  # once per shape, then up to date
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        stderr = start_and_stop(policy, out, tmp_path)                      # rsagent run start
        assert "Traceback" not in stderr and "rsagent: ERROR" not in stderr and "error:" not in stderr, stderr
    assert len(compiled) == 1


def test_the_generator_covers_every_field_and_shape() -> None:
    rules = every_field_rules()
    expected = {(t, f.name) for t in kernel_event_types() for f in REGISTRY.fields_of(t)}
    assert {(t, name) for t, name, _ in rules} == expected
    for t, name, expression in rules:
        assert name in expression and f"{t}." in expression
