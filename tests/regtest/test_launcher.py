"""`make regtest` end to end: the launcher starts the network, its demo passes, `stop` leaves nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from contrib.official_client.driver import missing_requirements
from contrib.regtest.procs import Daemon, group_members, is_alive
from contrib.regtest.state import NetworkState

pytestmark = pytest.mark.regtest

REPO = Path(__file__).resolve().parents[2]


def _launcher(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contrib.regtest.launcher", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _leftovers(daemons: list[Daemon]) -> list[int]:
    """Live PIDs of the network: the daemons and everything in their process groups."""
    return [p for d in daemons for p in {d.pid, *group_members(d.pid)} if is_alive(p)]


def _check_official_rows(rows: dict[str, dict[str, object]]) -> None:
    """The official Fedimint client received, paid (with A's fee) and was refunded through A."""
    receive = rows["Lightning -> Fedimint client (LNv1)"]
    assert receive["result"] == "paid" and receive["fee_msat"] == 0, receive  # LNv1 receives are free
    assert receive["detail"] == f"client got {receive['amount_msat']} msat"
    send = rows["Fedimint client (LNv1) -> Lightning"]
    assert send["result"] == "paid" and send["fee_msat"] == 1000 + 10_000_000 * 1000 // 1_000_000, send
    refund = rows["Fedimint client refund"]
    assert refund["result"] == "refunded" and refund["fee_msat"] == 0, refund
    assert all(r["path"] == "Lightning via A" for r in rows.values())


def test_launcher_start_demo_stop(tmp_path: Path) -> None:
    net = tmp_path / "net"
    daemons: list[Daemon] = []
    try:
        started = _launcher("start", "--dir", str(net))
        state = NetworkState.load(net)
        daemons = state.daemons if state else []
        assert started.returncode == 0, started.stdout + started.stderr
        assert state is not None and state.status == "ready"
        assert {d.name for d in daemons} == {
            "bitcoind",
            "lightningd-payer",
            "lightningd-a",
            "lightningd-b",
            "devfed-v1",
            "devfed-v12",
            "devfed-v2",
            "devfed-fm",
        }
        assert all(is_alive(d.pid) for d in daemons), "daemons must outlive the launcher"

        demo = json.loads((net / "demo.json").read_text())
        rows = {r["kind"]: r for r in demo["rows"]}
        assert demo["ok"] and all(r["ok"] for r in demo["rows"]), json.dumps(demo, indent=2)
        available = [r for r in demo["rows"] if r["expected"] not in ("unavailable", "skipped")]
        official = [
            r for r in demo["rows"] if r["source"] == "official client" or r["target"] == "official client"
        ]
        assert len(official) == 3
        missing = missing_requirements()
        if missing:  # the rows say why, loudly; the rest of the demo ran
            assert all(r["result"] == "skipped" and "SKIPPED" in r["detail"] for r in official)
            assert "SKIPPED" in started.stdout
        else:
            assert len(available) == 11
            _check_official_rows({r["kind"]: r for r in official})
        available = [r for r in available if r not in official]
        assert len(available) == 8
        assert all(r["result"] == "paid" for r in available if r["kind"] != "failing payment, refunded")
        assert rows["failing payment, refunded"]["result"] == "refunded"
        assert rows["failing payment, refunded"]["fee_msat"] == 0
        assert all(r["fee_msat"] > 0 and r["latency_ms"] >= 0 for r in available[:4])
        swap = rows["swap v1 -> v1+v2 (on A)"]
        assert swap["result"] == "paid" and swap["path"] == "swap (no Lightning)" and swap["fee_msat"] > 0
        peer = rows["peer forward A -> B"]
        assert peer["result"] == "paid" and peer["path"] == "peer" and peer["fee_msat"] > 0
        migrated = rows["migrate A's ecash v1 -> v1+v2"]
        assert (
            migrated["result"] == "paid"
            and migrated["fee_msat"] > 0
            and "arrived in v12" in migrated["detail"]
        )
        assert "Demo passed" in started.stdout and "lcli-payer" in started.stdout
        assert "lcli-a()" in (net / "env").read_text()

        # A second start finds the running network and leaves it alone.
        again = _launcher("start", "--dir", str(net), timeout=60)
        assert again.returncode == 0 and "already running" in again.stdout
        assert [d.pid for d in (NetworkState.load(net) or state).daemons] == [d.pid for d in daemons]
    finally:
        stopped = _launcher("stop", "--dir", str(net), timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert _leftovers(daemons) == []
    assert _launcher("status", "--dir", str(net), timeout=60).returncode == 3
