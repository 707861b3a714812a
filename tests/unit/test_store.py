from __future__ import annotations

from pathlib import Path

import pytest

from fedimint_gw.domain.amount import FeeSchedule
from fedimint_gw.domain.ids import FederationId, ShortChannelId
from fedimint_gw.errors import StoreError
from fedimint_gw.store import federations as repo
from fedimint_gw.store.db import Database, Migration, load_migrations


def _record(fid: str, index: int) -> repo.FederationRecord:
    return repo.FederationRecord(
        federation_id=FederationId(fid),
        name="test",
        invite_code="fed1xyz",
        api_major=1,
        api_minor=0,
        scid=ShortChannelId.from_int(index),
        fees=FeeSchedule(1000, 100),
        config={"guardians": 4},
        state=repo.FederationState.ACTIVE,
        created_at=1,
        updated_at=1,
    )


async def test_fresh_database_is_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    path = str(tmp_path / "gw.db")
    db = await Database.open(path)
    assert await db.schema_version() == len(load_migrations())
    async with db.conn.execute("PRAGMA journal_mode") as cur:
        row = await cur.fetchone()
    assert row is not None and row[0] == "wal"
    await db.close()
    # Re-opening applies nothing twice and keeps the version.
    db = await Database.open(path)
    assert await db.schema_version() == len(load_migrations())
    await db.close()


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "gw.db")
    db = await Database.open(path)
    await db.conn.execute("PRAGMA user_version=999")
    await db.close()
    with pytest.raises(StoreError, match="newer than this gateway"):
        await Database.open(path)


async def test_failed_migration_rolls_back(tmp_path: Path) -> None:
    migs = [
        Migration(1, "0001_a.sql", "CREATE TABLE a (x INTEGER)"),
        Migration(2, "0002_b.sql", "BROKEN SQL"),
    ]
    with pytest.raises(StoreError, match=r"0002_b\.sql"):
        await Database.open(str(tmp_path / "gw.db"), migs)
    db = await Database.open(str(tmp_path / "gw.db"), migs[:1])
    assert await db.schema_version() == 1
    await db.close()


async def test_scid_indexes_are_never_reused(tmp_path: Path) -> None:
    db = await Database.open(str(tmp_path / "gw.db"))
    async with db.transaction() as conn:
        first = await repo.next_scid_index(conn)
        await repo.insert(conn, _record("aa" * 32, first))
    async with db.transaction() as conn:
        await repo.set_state(conn, FederationId("aa" * 32), repo.FederationState.LEFT, 2)
        second = await repo.next_scid_index(conn)
    assert (first, second) == (1, 2)
    active = await repo.list_all(db.conn, repo.FederationState.ACTIVE)
    assert active == []
    rec = await repo.get(db.conn, FederationId("aa" * 32))
    assert rec is not None and rec.state is repo.FederationState.LEFT and rec.config == {"guardians": 4}
    await db.close()


async def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    db = await Database.open(str(tmp_path / "gw.db"))
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await repo.insert(conn, _record("bb" * 32, 7))
            raise RuntimeError("crash mid-transaction")
    assert await repo.get(db.conn, FederationId("bb" * 32)) is None
    await db.close()


async def test_migration_5_forgets_stored_strangers_but_no_link_with_a_ledger(tmp_path: Path) -> None:
    migs = load_migrations()
    path = str(tmp_path / "gw.db")
    db = await Database.open(path, migs[:4])
    async with db.transaction() as conn:
        for i, state in enumerate(("introduced", "introduced", "active", "introduced")):
            await conn.execute(
                "INSERT INTO peers (node_id, url, state, credit_limit_msat, created_at, updated_at) "
                "VALUES (?, NULL, ?, 0, 0, 0)",
                (f"n{i}", state),
            )
        await conn.execute("INSERT INTO peer_ledger VALUES ('n3', 'forward:x', 5, 0)")
    await db.close()
    db = await Database.open(path, migs[:5])
    try:
        async with db.conn.execute("SELECT node_id FROM peers ORDER BY node_id") as cur:
            rows = [r[0] for r in await cur.fetchall()]
    finally:
        await db.close()
    assert rows == ["n2", "n3"]
