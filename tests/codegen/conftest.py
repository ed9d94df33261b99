"""Fixtures for the rule compiler tests."""
from __future__ import annotations

from pathlib import Path
from collections.abc import Callable

import pytest


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str, name: str = "test.policy", directory: Path | None = None) -> Path:
        d = directory or tmp_path
        d.mkdir(parents=True, exist_ok=True)
        path = d / name
        path.write_text(text, encoding="utf-8")
        return path
    return write
