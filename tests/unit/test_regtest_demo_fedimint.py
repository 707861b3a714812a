"""The official-client demo rows when they cannot run: SKIPPED with the reason, never failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from contrib.regtest import demo_fedimint
from contrib.regtest.demo import table
from contrib.regtest.state import NetworkState


def _state(tmp_path: Path, *, with_fm: bool) -> NetworkState:
    state = NetworkState(base=tmp_path, python="python3")
    state.nodes = {"payer": {"id": "02" * 33}, "a": {"id": "03" * 33}}
    if with_fm:
        state.federations["fm"] = {"gateway": "a", "federation_id": "ab" * 32, "invite_code": "fed11x"}
    return state


def test_rows_skip_with_the_reason_when_the_client_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_fedimint, "missing_requirements", lambda: ["node (>= 20) not on PATH"])
    rows = demo_fedimint.fedimint_rows(_state(tmp_path, with_fm=True))
    assert [r.kind for r in rows] == [
        "Lightning -> Fedimint client (LNv1)",
        "Fedimint client (LNv1) -> Lightning",
        "Fedimint client refund",
    ]
    assert all(r.result == "skipped" and r.ok for r in rows)
    assert all(
        r.detail == "SKIPPED: official Fedimint client missing: node (>= 20) not on PATH" for r in rows
    )
    printed = table(rows)
    assert printed.count("SKIPPED: official Fedimint client missing") == 3


def test_rows_skip_on_a_network_without_the_fedimint_federation(tmp_path: Path) -> None:
    rows = demo_fedimint.fedimint_rows(_state(tmp_path, with_fm=False))
    assert len(rows) == 3
    assert all(r.result == "skipped" and "no Fedimint-family federation" in r.detail for r in rows)


def test_the_launcher_says_loudly_what_was_skipped_and_still_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contrib.regtest import launcher

    state = _state(tmp_path, with_fm=False)
    rows = demo_fedimint.fedimint_rows(state)
    monkeypatch.setattr(launcher, "run_demo", lambda st, *extra: (rows, tmp_path / "demo.json"))
    assert launcher.run_and_print_demo(state) == 0
    out = capsys.readouterr().out
    assert "!!! 3 row(s) SKIPPED, not run: this network has no Fedimint-family federation" in out
    assert "make interop-deps" in out and "Demo passed" in out
