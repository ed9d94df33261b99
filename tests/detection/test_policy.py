"""The default policy's conventions, checked without a kernel: every rule is
documented, tagged and tested; the scenarios name rules that exist; the
in-kernel filters keep their approvers and discarders; the README's coverage
table is the one the policy and the scenarios give."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from detection_coverage import README, TACTICS, TECHNIQUES, readme_section, section
from detection_scenarios import SCENARIOS

from agent.evaluator.ruleset import Ruleset
from codegen.cbackend import kernel_filters
from codegen.policy import load_policies
from codegen.testcases import case_files, read_cases
from codegen.errors import Diagnostics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
SEVERITIES = {"low", "medium", "high", "critical"}
# each policy file holds the rules of one tactic (impact also holds the generic integrity rules)
FILE_TACTIC = {
    "execution.policy": "TA0002", "persistence.policy": "TA0003", "privilege_escalation.policy": "TA0004",
    "defense_evasion.policy": "TA0005", "credential_access.policy": "TA0006", "discovery.policy": "TA0007",
    "lateral_movement.policy": "TA0008", "command_and_control.policy": "TA0011", "impact.policy": "TA0040",
}


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    result = load_policies([RULES])
    assert result.ok, "\n".join(d.format() for d in result.diagnostics.sorted())
    return result.ruleset


def test_every_rule_is_described_and_tagged(ruleset: Ruleset) -> None:
    for r in ruleset.rules:
        assert r.description, f"{r.position}: rule {r.id} has no description"
        assert r.tags.get("severity") in SEVERITIES, f"{r.position}: {r.id}: severity must be one of {SEVERITIES}"
        assert r.tags.get("technique") in TECHNIQUES, f"{r.position}: {r.id}: unknown technique {r.tags.get('technique')}"
        assert r.tags.get("tactic") == FILE_TACTIC[Path(r.position.file).name], (
            f"{r.position}: {r.id}: tactic {r.tags.get('tactic')} in {Path(r.position.file).name}")


def test_every_rule_says_why_it_has_its_exceptions() -> None:
    """Each rule carries a comment before its expression: the reason for each
    exception, or that it has none."""
    for f in sorted(RULES.glob("*.policy")):
        rules_part = f.read_text().partition("\nrules:\n")[2]
        for block in re.split(r"\n  - id: ", "\n" + rules_part)[1:]:
            rule_id = block.split("\n", 1)[0]
            head = block.split("\n    expression:", 1)[0]
            assert re.search(r"^    # ", head, re.M), f"{f.name}: rule {rule_id} has no comment on its exceptions"


def test_every_rule_has_a_positive_rulec_case(ruleset: Ruleset) -> None:
    diags = Diagnostics()
    expected: Counter[str] = Counter()
    for path in case_files([str(RULES)]):
        for case in read_cases(path, diags):
            expected.update(case.expect or ())
            expected.update(case.includes)
    assert not diags.has_errors
    missing = sorted(r.id for r in ruleset.rules if not expected[r.id])
    assert not missing, f"rules with no rulec case expecting them (rules/tests/*.yaml): {missing}"


def test_scenarios_name_existing_rules_of_their_technique(ruleset: Ruleset) -> None:
    by_id = {r.id: r for r in ruleset.rules}
    for s in SCENARIOS:
        unknown = [r for r in (*s.rules, *s.tolerated) if r not in by_id]
        assert not unknown, f"scenario {s.name} names unknown rules {unknown}"
        assert s.tactic in TACTICS, f"scenario {s.name}: unknown tactic {s.tactic}"
        assert any(by_id[r].tags["technique"] == s.technique for r in s.rules), (
            f"scenario {s.name} ({s.technique}) expects no rule tagged with its technique")


def test_throttled_rules_are_expected_by_one_scenario_at_most(ruleset: Ruleset) -> None:
    """`every` throttles a rule for every process: a second scenario expecting
    it within the window would miss its alert."""
    throttled = {r.id for r in ruleset.rules if r.every}
    counts = Counter(r for s in SCENARIOS for r in s.rules if r in throttled)
    assert all(n <= 1 for n in counts.values()), counts


def test_file_rules_keep_their_kernel_filters(ruleset: Ruleset) -> None:
    """Every open rule offers an approver (a name, a path or write flags) and is
    discardable: otherwise every open of the machine reaches user space."""
    filters = kernel_filters(ruleset)
    assert filters["open"].approve_kinds, filters["open"].summary
    assert filters["open"].discard, filters["open"].summary


def test_readme_coverage_table_is_current() -> None:
    current = readme_section(README.read_text())
    assert current == section(), "README's coverage table is stale: run `python tests/detection/detection_coverage.py --write`"


def test_readme_local_exception_example_works(tmp_path: Path) -> None:
    """The README's local policy loads after the bundled one and does what it says."""
    text = README.read_text().split("### Local exceptions", 1)[1]
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    local = tmp_path / "local.policy"
    local.write_text(example)
    result = load_policies([RULES, local])
    assert result.ok, "\n".join(d.format() for d in result.diagnostics.sorted())
    rules = {r.id: r for r in result.ruleset.rules}
    shell_below_shop = {"type": "exec", "exec": {"file": {"path": "/usr/bin/dash"}},
                        "process": {"file": {"path": "/usr/bin/dash"},
                                    "ancestors": [{"file": {"path": "/opt/shop/bin/shop-server"}}]}}
    assert rules["shell_from_network_service"].matches(shell_below_shop)
    restic = {"type": "open", "open": {"flags": 0, "file": {"path": "/etc/shadow"}},
              "process": {"file": {"path": "/usr/bin/restic"}}}
    assert not rules["credential_file_read"].matches(restic)
    assert "sudo_privileges_listed" not in rules or rules["sudo_privileges_listed"].disabled
    assert rules["network_tool_executed"].every == 60 * 10**9
