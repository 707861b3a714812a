"""Shared pytest setup: loud skips for tests whose tools are missing on this machine.

Each marker below names what its tests need; where something is missing they are skipped with
the reason, and the run ends with a red line per marker so a skip is never mistaken for a pass.
"""

from __future__ import annotations

import importlib.util
import shutil

import pytest

REGTEST_BINARIES = ("lightningd", "bitcoind", "bitcoin-cli")

# marker -> (executables, Python modules, what to do about it)
NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "regtest": (
        REGTEST_BINARIES,
        (),
        "These tests prove the plugin works inside a real lightningd; install Core Lightning v26.06 "
        "(built --disable-rust) and Bitcoin Core, then run `make test` again.",
    ),
    "reckless": (
        ("reckless", "git"),
        (),
        "These tests install the plugin with Core Lightning's `reckless` (installed with lightningd).",
    ),
    "browser": (
        ("chromium", "chromedriver"),
        ("selenium",),
        "These tests look at the dashboard in headless Chromium: `apt-get install chromium "
        "chromium-driver` (Debian), then `make test` (it installs selenium).",
    ),
}
SKIPPED = pytest.StashKey[dict[str, list[str]]]()


def missing_for(marker: str) -> list[str]:
    """What `marker`'s tests need and this machine lacks."""
    binaries, modules, _ = NEEDS[marker]
    gone = [b for b in binaries if shutil.which(b) is None]
    return gone + [f"python module {m}" for m in modules if importlib.util.find_spec(m) is None]


def missing_binaries() -> list[str]:
    return missing_for("regtest")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skipped: dict[str, list[str]] = {}
    for marker, (_, _, advice) in NEEDS.items():
        marked = [item for item in items if marker in item.keywords]
        missing = missing_for(marker) if marked else []
        if not missing:
            continue
        skipped[marker] = missing
        reason = f"{marker.upper()} SKIPPED: {', '.join(missing)} not found. {advice}"
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=reason))
    config.stash[SKIPPED] = skipped


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for marker, missing in config.stash.get(SKIPPED, {}).items():
        terminalreporter.write_sep(
            "!", f"{marker} tests were SKIPPED: {', '.join(missing)} missing", red=True, bold=True
        )
