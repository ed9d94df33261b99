"""Shared fixtures. Tests that need root and BPF run on the real kernel; the
BPF objects are built once per session (`make build` does the same)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from agent.build import ROOT, build

if TYPE_CHECKING:
    from harness import Tracer


@pytest.fixture(scope="session")
def built_objects() -> None:
    build(ROOT / "build", quiet=True)


@pytest.fixture(scope="session")
def tracer(built_objects: None) -> Iterator[Tracer]:
    from harness import Tracer

    t = Tracer().start()
    yield t
    t.stop()
