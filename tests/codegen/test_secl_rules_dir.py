"""CI gate for the repository's policies: every policy in rules/ is valid and its
test cases (rules/tests/*.yaml) pass."""
from __future__ import annotations

from pathlib import Path

import pytest

from codegen.approvers import compute_approvers
from codegen.cli import main
from codegen.policy import load_policies, policy_files

RULES = Path(__file__).resolve().parents[2] / "rules"


def test_every_policy_in_rules_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(RULES)]) == 0, capsys.readouterr().err
    # each file on its own, after default.policy (whose macros the others use), as the directory loads them
    default = RULES / "default.policy"
    for path in policy_files(RULES):
        result = load_policies([default] if path == default else [default, path])
        assert result.ok, "\n".join(d.format() for d in result.diagnostics.errors)


@pytest.mark.skipif(not (RULES / "tests").is_dir(), reason="rules/ has no tests/ directory")
def test_rule_test_cases_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["test", str(RULES)])
    out, err = capsys.readouterr()
    assert code == 0, err + out
    assert out.strip().endswith(", 0 failed")


def test_default_policy_compiles_to_filters() -> None:
    result = load_policies([RULES])
    approvers = compute_approvers(result.ruleset)
    assert set(approvers) == set(result.ruleset.event_types)
