"""Fixtures of the process-activity tests: no agent a test started outlives it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rules"))
from agentproc import reap


@pytest.fixture(autouse=True)
def _no_orphan_agents() -> Iterator[None]:
    yield
    reap()
