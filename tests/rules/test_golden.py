"""The C backend's output for fixture policies, diffed against golden files.
Regenerate after an intended change: UPDATE_GOLDEN=1 pytest tests/rules/test_golden.py"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from codegen.cbackend import kernel_filters, render_policy_header
from codegen.policy import load_policies

GOLDEN = Path(__file__).resolve().parent / "golden"
FIXTURES = sorted(p.stem for p in GOLDEN.glob("*.policy"))


def _outputs(name: str) -> dict[str, str]:
    result = load_policies([GOLDEN / f"{name}.policy"])
    assert result.ok and not result.failed, [d.format() for d in result.problems()]
    filters = kernel_filters(result.ruleset)
    return {
        f"{name}.policy.h": render_policy_header(filters),
        f"{name}.filters.json": json.dumps({t: f.manifest() for t, f in sorted(filters.items())},
                                           indent=2, sort_keys=True) + "\n",
    }


@pytest.mark.parametrize("name", FIXTURES)
def test_generated_sources_match_golden(name: str) -> None:
    for filename, text in _outputs(name).items():
        golden = GOLDEN / filename
        if os.environ.get("UPDATE_GOLDEN"):
            golden.write_text(text)
        assert golden.exists(), f"missing {golden}: run with UPDATE_GOLDEN=1"
        assert text == golden.read_text(), f"{filename} changed; review and run with UPDATE_GOLDEN=1"


def test_generation_is_deterministic() -> None:
    for name in FIXTURES:
        assert _outputs(name) == _outputs(name)


def test_header_depends_on_the_shape_only() -> None:
    a = load_policies([GOLDEN / "approvers.policy"]).ruleset
    text = (GOLDEN / "approvers.policy").read_text().replace("/etc/gshadow", "/etc/other-name")
    other = GOLDEN.parent / "golden-tmp.policy"
    other.write_text(text)
    try:
        b = load_policies([other]).ruleset
    finally:
        other.unlink()
    assert render_policy_header(kernel_filters(a)) == render_policy_header(kernel_filters(b))
    assert kernel_filters(a)["open"].basenames != kernel_filters(b)["open"].basenames


@pytest.mark.root
@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_objects_load_on_this_kernel(name: str, tmp_path: Path, built_objects: None) -> None:
    """Every program of every fixture's shape passes this kernel's verifier
    (a shape's checks are compiled in: each needs loading once), and the
    object holds the programs of its types (object_event_types), no others."""
    from codegen.cbackend import object_event_types
    from agent.compiled import locate
    from agent.features import probe
    from agent.hooksets import choose_hook_set
    from agent.libbpf import load_object
    from agent.libbpf.spec import ObjectSpec

    result = load_policies([GOLDEN / f"{name}.policy"])
    compiled = locate(result, cache=tmp_path)
    hook_set = choose_hook_set(probe(compiled.features_object)).hook_set
    assert hook_set is not None
    types = object_event_types(compiled.filters) & hook_set.supported_event_types()
    programs = hook_set.programs_for(types)
    others = set(hook_set.programs_for(None)) - set(hook_set.programs_for(types))
    held = {p.name for p in ObjectSpec.from_file(compiled.probe_object).programs}
    exits = {p for p in others if p.startswith("rs_exit_")}
    assert exits and not exits & held, sorted(exits & held)
    with load_object(compiled.probe_object, programs=programs) as obj:
        assert obj.loaded
