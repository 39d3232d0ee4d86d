"""The fuzz run's request count, printed in the terminal summary of every pytest run (`make test`)."""

from __future__ import annotations

import pytest

FUZZ_KEY = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    line = config.stash.get(FUZZ_KEY, None)
    if line:
        terminalreporter.write_line(line)
