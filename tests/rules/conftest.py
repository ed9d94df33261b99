"""Fixtures of the rule/filter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agentproc import reap


@pytest.fixture(autouse=True)
def _no_orphan_agents() -> Iterator[None]:
    yield
    reap()
