"""`fedimint-backup`: a consistent online copy of the gateway's database (store/backup.py)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedimint_gw.errors import AlreadyExists, InvalidInput
from fedimint_gw.store.backup import take_restore_marker, write_backup
from fedimint_gw.store.db import Database

FID = "ab" * 32


async def _open(tmp_path: Path) -> Database:
    db = await Database.open(str(tmp_path / "live" / "fedimint-gw.sqlite3"))
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO federations (federation_id, name, invite_code, api_major, api_minor, scid, "
            "fee_base_msat, fee_ppm, config_json, state, created_at, updated_at) "
            "VALUES (?, 'f', 'fed1x', 1, 0, 1, 0, 0, '{}', 'active', 1, 1)",
            (FID,),
        )
        for i, amount in enumerate((1024, 2048, 4096)):
            await conn.execute(
                "INSERT INTO ecash_notes (secret, federation_id, amount_msat, signature, state, created_at) "
                "VALUES (?, ?, ?, 'sig', ?, 1)",
                (f"s{i}", FID, amount, "spent" if i == 2 else "unspent"),
            )
    return db


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """umask 022, as most operators have it: new files are readable by everyone by default."""
    old = os.umask(0o022)
    yield
    os.umask(old)


async def test_backup_is_one_self_contained_file_with_the_same_rows(
    tmp_path: Path, usual_umask: None
) -> None:
    db = await _open(tmp_path)
    dest = tmp_path / "backups" / "gw-1.sqlite3"
    dest.parent.mkdir()
    result = await write_backup(db, str(dest), now=1234)
    await db.close()

    assert result.path == str(dest) and result.created_at == 1234
    assert (result.federations, result.ecash_notes, result.ecash_msat) == (1, 2, 3072)
    assert result.size_bytes == dest.stat().st_size > 0
    assert dest.stat().st_mode & 0o777 == 0o600  # bearer money: owner only, whatever the umask
    assert sorted(os.listdir(dest.parent)) == ["gw-1.sqlite3"]  # no -wal, no partial file left
    copy = sqlite3.connect(str(dest))
    try:
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert copy.execute("PRAGMA user_version").fetchone()[0] == result.schema_version > 0
        notes = copy.execute("SELECT secret, state FROM ecash_notes ORDER BY secret").fetchall()
        assert notes == [("s0", "unspent"), ("s1", "unspent"), ("s2", "spent")]
    finally:
        copy.close()
    # The gateway opens a restored copy like its own database, and learns it is a restored one.
    restored = await Database.open(str(dest))
    assert await restored.schema_version() == result.schema_version
    assert await take_restore_marker(restored) == 1234
    assert await take_restore_marker(restored) is None  # said once
    await restored.close()


async def test_the_live_database_is_not_marked(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    await write_backup(db, str(tmp_path / "copy.sqlite3"), now=5)
    assert await take_restore_marker(db) is None
    await db.close()


@pytest.mark.parametrize(
    ("path", "error", "match"),
    [
        ("", InvalidInput, "absolute path"),
        (5, InvalidInput, "absolute path"),
        ("relative/gw.sqlite3", InvalidInput, "must be absolute"),
        ("/no/such/dir/gw.sqlite3", InvalidInput, "does not exist"),
    ],
)
async def test_bad_destinations_are_refused(tmp_path: Path, path: object, error: type, match: str) -> None:
    db = await _open(tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(error, match=match):
        await write_backup(db, path, now=1)
    await db.close()
    assert sorted(os.listdir(tmp_path)) == before


async def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    dest = tmp_path / "precious"
    dest.write_bytes(b"keep me")
    with pytest.raises(AlreadyExists, match="never overwrites"):
        await write_backup(db, str(dest), now=1)
    with pytest.raises(InvalidInput, match="gateway's database"):
        await write_backup(db, db.path + "-wal", now=1)
    await db.close()
    assert dest.read_bytes() == b"keep me"


async def test_backups_during_writes_hold_whole_transactions_and_never_deadlock(tmp_path: Path) -> None:
    """Writers commit pairs of rows while backups run on the same connection: every copy holds
    both rows of a pair or neither (SQLite's backup of a connection with an open write
    transaction would spin forever on the connection's own lock)."""
    db = await _open(tmp_path)
    (tmp_path / "b").mkdir()

    async def writer(n: int) -> None:
        for i in range(5):
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO ecash_notes (secret, federation_id, amount_msat, signature, state, "
                    "created_at) VALUES (?, ?, 1, 'x', 'unspent', 1)",
                    (f"w{n}-{i}-a", FID),
                )
                await conn.execute(
                    "INSERT INTO ecash_notes (secret, federation_id, amount_msat, signature, state, "
                    "created_at) VALUES (?, ?, 1, 'x', 'unspent', 1)",
                    (f"w{n}-{i}-b", FID),
                )

    async def backups() -> list[str]:
        paths = []
        for i in range(5):
            paths.append((await write_backup(db, str(tmp_path / "b" / f"{i}.sqlite3"), now=1)).path)
        return paths

    results = await asyncio.wait_for(asyncio.gather(writer(1), writer(2), backups()), timeout=60)
    await db.close()
    for path in results[2]:
        copy = sqlite3.connect(path)
        secrets = {r[0] for r in copy.execute("SELECT secret FROM ecash_notes WHERE secret LIKE 'w%'")}
        copy.close()
        halves = {s[:-2] for s in secrets}
        assert all(f"{h}-a" in secrets and f"{h}-b" in secrets for h in halves), path


async def test_the_live_database_is_owner_only(tmp_path: Path, usual_umask: None) -> None:
    """New or existing, the gateway's database and its WAL are not readable by other users."""
    db = await _open(tmp_path)
    live = Path(db.path)
    try:
        assert live.stat().st_mode & 0o777 == 0o600
        assert Path(f"{live}-wal").stat().st_mode & 0o777 == 0o600
    finally:
        await db.close()
    live.chmod(0o644)  # written by an older version under umask 022
    db = await Database.open(str(live))
    try:
        assert live.stat().st_mode & 0o777 == 0o600
    finally:
        await db.close()
