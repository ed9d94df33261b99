"""The scenario suite's counts, printed after pytest's own summary."""

from __future__ import annotations

import pytest
from detection_agent import SUMMARY_KEY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    line = config.stash.get(SUMMARY_KEY, None)
    if line is not None:
        terminalreporter.write_line(line)
