"""rulec validate / eval / test, as docs/interfaces.md specifies."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from collections.abc import Callable

import pytest

from codegen.cli import COMMANDS, build_parser, main
from secl_helpers import OPEN_EVENT

WritePolicy = Callable[..., Path]


@pytest.fixture
def event_file(tmp_path: Path) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(OPEN_EVENT), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_true_false(capsys: pytest.CaptureFixture[str], event_file: Path) -> None:
    assert run(capsys, "eval", "--expr", 'open.file.path =~ "/etc/*" && process.created_at > 5s',
               "--event", str(event_file)) == (0, "true\n", "")
    assert run(capsys, "eval", "--expr", "process.created_at > 15s && open.flags > 0",
               "--event", str(event_file)) == (0, "false\n", "")


def test_eval_reads_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(OPEN_EVENT)))
    assert run(capsys, "eval", "--expr", 'process.comm == "cat"', "--event", "-") == (0, "true\n", "")


def test_eval_invalid_expression_exits_2(capsys: pytest.CaptureFixture[str], event_file: Path) -> None:
    code, out, err = run(capsys, "eval", "--expr", 'open.flags > 0 && open.file.pth == "x"', "--event", str(event_file))
    assert code == 2 and out == ""
    assert err.splitlines() == ["<expr>:1:19: error: unknown field 'open.file.pth', did you mean 'open.file.path'?",
                                'open.flags > 0 && open.file.pth == "x"', "                  ^"]
    code, _, err = run(capsys, "eval", "--expr", "open.flags >", "--event", str(event_file))
    assert code == 2 and err.startswith("<expr>:1:13: error: unexpected end of expression")


def test_eval_bad_event(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  nope", encoding="utf-8")
    code, _, err = run(capsys, "eval", "--expr", "open.flags > 0", "--event", str(bad))
    assert code == 2 and err.startswith(f"{bad}:2:3: error: invalid JSON")
    code, _, err = run(capsys, "eval", "--expr", "open.flags > 0", "--event", str(tmp_path / "none.json"))
    assert code == 2 and "cannot read event" in err


def test_eval_uses_policy_macros_and_timestamp(capsys: pytest.CaptureFixture[str], write_policy: WritePolicy,
                                               event_file: Path) -> None:
    policy = write_policy("macros:\n  - id: readers\n    values: [cat, less]\n"
                          "rules:\n  - id: bad id\n    expression: nonsense\n")
    code, out, err = run(capsys, "eval", "--expr", "process.comm in readers && open.flags > 0",
                         "--event", str(event_file), "--policy", str(policy))
    assert (code, out) == (0, "true\n") and "warning: invalid rule ID 'bad id'" in err


def test_eval_event_of_another_type_is_false(capsys: pytest.CaptureFixture[str], event_file: Path) -> None:
    assert run(capsys, "eval", "--expr", "exec.file.name != \"x\"", "--event", str(event_file)) == (0, "false\n", "")


def test_validate(capsys: pytest.CaptureFixture[str], write_policy: WritePolicy) -> None:
    good = write_policy("rules:\n  - id: a\n    expression: open.flags > 0 && open.file.name == \"x\" || open.retval < 0\n",
                        name="good.policy")
    code, out, err = run(capsys, "validate", str(good))
    assert code == 0 and out == "1 rule(s), 0 macro(s) in 1 file(s): valid, 1 warning(s)\n"
    assert err.startswith(f"{good}:3:32: warning: '&&' and '||' mixed without parentheses")
    bad = write_policy("rules:\n  - id: a\n    expression: open.flags > 0 && open.file.pth == \"x\"\n"
                       "  - id: b\n    expression: open.flgs > 0\n", name="bad.policy")
    code, out, err = run(capsys, "validate", str(bad))
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"{bad}:3:35: error: unknown field 'open.file.pth', did you mean 'open.file.path'?"
    assert lines[1] == '    expression: open.flags > 0 && open.file.pth == "x"'
    assert lines[2] == " " * 34 + "^"
    assert lines[3].startswith(f"{bad}:5:17: error: unknown field 'open.flgs'")
    assert lines[-1] == "rulec: 2 error(s), 0 warning(s) in 1 file(s)"


def test_test_command(capsys: pytest.CaptureFixture[str], tmp_path: Path, write_policy: WritePolicy) -> None:
    write_policy("rules:\n  - id: secrets\n    expression: open.file.path =~ \"/etc/*\"\n", name="default.policy")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "event.json").write_text(json.dumps(OPEN_EVENT), encoding="utf-8")
    (tmp_path / "tests" / "cases.yaml").write_text("""cases:
  - name: secret
    event_file: event.json
    expect: [secrets]
  - name: elsewhere
    event: {type: open, open: {file: {path: /tmp/x}}}
    expect: []
  - name: wrong
    event: {type: open, open: {file: {path: /tmp/x}}}
    expect_includes: [secrets]
  - name: typo
    event: {type: open}
    expect: [secret]
""", encoding="utf-8")
    code, out, err = run(capsys, "test", str(tmp_path))
    assert code == 1 and out == "2 passed, 2 failed\n"
    cases = tmp_path / "tests" / "cases.yaml"
    assert err.splitlines()[0] == f"{cases}:8:5: error: case 'wrong': expected to match ['secrets']"
    assert f"{cases}:11:5: error: case 'typo': unknown rule ID(s) secret" in err
    code, out, _ = run(capsys, "test", str(tmp_path / "default.policy"), "--cases", str(cases))
    assert (code, out) == (1, "2 passed, 2 failed\n")
    code, _, err = run(capsys, "test", str(tmp_path / "default.policy"))
    assert code == 1 and "no test cases found" in err


def test_subcommands() -> None:
    assert sorted(COMMANDS) == ["compile", "eval", "explain", "replay", "test", "validate"]
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["compile", "x"])  # -o OUTDIR is required
    assert exc.value.code == 2


def test_console_script(event_file: Path) -> None:
    script = Path(sys.executable).parent / "rulec"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "codegen.cli"]
    proc = subprocess.run(cmd + ["eval", "--expr", "open.flags == 66", "--event", "-"],
                          input=event_file.read_text(), capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "true\n", "")
