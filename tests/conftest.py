"""Shared pytest setup: loud skips for regtest tests where lightningd/bitcoind are missing."""

from __future__ import annotations

import shutil

import pytest

REGTEST_BINARIES = ("lightningd", "bitcoind", "bitcoin-cli")


def missing_binaries() -> list[str]:
    return [b for b in REGTEST_BINARIES if shutil.which(b) is None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = missing_binaries()
    if not missing:
        return
    reason = (
        f"REGTEST SKIPPED: {', '.join(missing)} not on PATH. These tests prove the plugin works inside "
        "a real lightningd; install Core Lightning v26.06 (built --disable-rust) and Bitcoin Core, "
        "then run `make test` again."
    )
    for item in items:
        if "regtest" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    missing = missing_binaries()
    if missing:
        terminalreporter.write_sep(
            "!", f"regtest tests were SKIPPED: {', '.join(missing)} missing from PATH", red=True, bold=True
        )
