"""The crash matrix's injection: it fires exactly once, after the commit of the armed step."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.store import payments as repo
from fedimint_gw.store.crash_points import CrashPoints, check_point
from fedimint_gw.store.db import Database


class Died(Exception):
    pass


def _rec(state: PaymentState, **data: object) -> repo.PaymentRecord:
    return repo.PaymentRecord("p1", PaymentKind.RECEIVE, state, "00" * 32, 1000, 1, 1, data=dict(data))


async def _armed(tmp_path: Path, point: str) -> tuple[Database, list[str]]:
    db = await Database.open(str(tmp_path / "gw.sqlite3"))
    deaths: list[str] = []

    def die() -> None:
        deaths.append("killed")
        raise Died

    crash = CrashPoints(lambda msg, level: None, die)
    await db.enable_crash_points(crash)
    crash.arm(point)
    return db, deaths


async def test_fires_after_the_commit_of_the_armed_state_only(tmp_path: Path) -> None:
    db, deaths = await _armed(tmp_path, "receive:funded")
    async with db.transaction() as conn:
        await repo.save(conn, _rec(PaymentState.HTLC_HELD))
    assert deaths == []
    with pytest.raises(Died):
        async with db.transaction() as conn:
            await repo.save(conn, _rec(PaymentState.FUNDED))
    assert deaths == ["killed"]
    stored = await repo.get(db.conn, "p1")
    assert stored is not None and stored.state is PaymentState.FUNDED  # committed before the kill
    async with db.transaction() as conn:  # once only
        await repo.save(conn, _rec(PaymentState.SUCCEEDED))
        await repo.save(conn, _rec(PaymentState.FUNDED))
    assert deaths == ["killed"]
    await db.close()


async def test_a_rolled_back_write_does_not_fire(tmp_path: Path) -> None:
    db, deaths = await _armed(tmp_path, "receive:funded")
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await repo.save(conn, _rec(PaymentState.FUNDED))
            raise RuntimeError("boom")
    async with db.transaction() as conn:
        await repo.save(conn, _rec(PaymentState.HTLC_HELD))
    assert deaths == []
    await db.close()


async def test_a_data_step_is_a_point_of_its_own(tmp_path: Path) -> None:
    db, deaths = await _armed(tmp_path, "receive:htlc_held:offer")
    async with db.transaction() as conn:
        await repo.save(conn, _rec(PaymentState.HTLC_HELD, step="spend"))
    assert deaths == []
    with pytest.raises(Died):
        async with db.transaction() as conn:
            await repo.save(conn, _rec(PaymentState.HTLC_HELD, step="offer"))
    await db.close()


def test_point_names_are_checked() -> None:
    assert check_point("settlement:debtor:paying") == "settlement:debtor:paying"
    for bad in ("", "receive", "funded", "receive:funded; DROP TABLE payments", "x:y", "receive:a:b:c"):
        with pytest.raises(ValueError):
            check_point(bad)


async def test_settlement_and_ecash_operation_writes_are_points_too(tmp_path: Path) -> None:
    from fedimint_gw.store import peers

    node_id = "02" + "11" * 32
    db, deaths = await _armed(tmp_path, "settlement:debtor:paying")
    async with db.transaction() as conn:
        await peers.add_or_update(conn, node_id, "http://peer", 10_000, 1)
        s = peers.Settlement("s1", node_id, "debtor", peers.SettlementState.REQUESTED, 5000, 1, 1)
        await peers.save_settlement(conn, s)
    assert deaths == []
    with pytest.raises(Died):
        async with db.transaction() as conn:
            await peers.save_settlement(conn, s.advance(peers.SettlementState.PAYING, 2))
    await db.close()

    db, deaths = await _armed(tmp_path / "e", "ecash:fund_incoming:done")

    async def write(sql: str) -> None:
        async with db.transaction() as conn:
            await conn.execute(sql)

    await write(
        "INSERT INTO ecash_operations (operation_id, federation_id, kind, state, tx_json, outputs_json, "
        "created_at, updated_at) VALUES ('op', 'f', 'fund_incoming', 'prepared', '{}', '[]', 1, 1)"
    )
    await write("UPDATE ecash_operations SET result_json = '{\"accepted\": true}' WHERE operation_id = 'op'")
    assert deaths == []  # the same state written again is no step
    with pytest.raises(Died):
        await write("UPDATE ecash_operations SET state = 'done' WHERE operation_id = 'op'")
    await db.close()
