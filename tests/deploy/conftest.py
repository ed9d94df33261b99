"""Fixtures of the deployment tests: no agent or server outlives its test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sinkutil import reap


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    yield
    reap()
