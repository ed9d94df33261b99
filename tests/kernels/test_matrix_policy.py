"""The kernel matrix's policy (make test-kernels) gives every produced event
type a program in the guest's object: checked here, without a VM, so a new
event type cannot break the matrix unnoticed."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matrix

from codegen.cbackend import kernel_filters, object_event_types
from codegen.eventtypes import PRODUCED
from codegen.policy import load_policies


def test_matrix_policy_covers_every_produced_type() -> None:
    result = load_policies([matrix.ROOT / "rules", matrix.write_matrix_policy()])
    assert result.ok, [d.format() for d in result.diagnostics]
    assert object_event_types(kernel_filters(result.ruleset)) >= {t.name for t in PRODUCED}
