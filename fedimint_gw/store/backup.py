"""Online backups of the gateway's database (`fedimint-backup`).

The copy is taken with SQLite's backup API on the gateway's own connection while it holds the
write lock, so it is one consistent state: every flow's row is as it was after its last
committed step. The copy is written beside the destination under a temporary name, readable
by its owner only (mode 0600), checked (`PRAGMA integrity_check`), switched to a single
self-contained file (journal mode DELETE), marked as a backup (table `backup_marker`, which
only copies have), flushed to disk and only then linked to the destination name, which is
never overwritten. A failure at any point leaves no file at the destination. When a copy is
restored, the gateway finds the marker at start (`take_restore_marker`), says so in its log,
and removes it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from fedimint_gw.errors import AlreadyExists, InvalidInput, StoreError
from fedimint_gw.store.db import Database

MARKER = "backup_marker"


@dataclass(frozen=True)
class BackupResult:
    """What a backup file holds (counted in the copy itself, not in the live database)."""

    path: str
    size_bytes: int
    schema_version: int
    federations: int
    ecash_notes: int
    ecash_msat: int
    payments: int
    peers: int
    created_at: int


def check_destination(raw: object, db_path: str) -> Path:
    """Parse the destination of a backup; raise InvalidInput or AlreadyExists, touch nothing."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("path must be the absolute path of the backup file to write")
    text = raw.strip()
    if "\x00" in text:
        raise InvalidInput("path must not contain a NUL character")
    dest = Path(text)
    if not dest.is_absolute():
        raise InvalidInput(f"path must be absolute (lightningd's working directory is not yours): {text!r}")
    if dest.name in ("", ".", ".."):
        raise InvalidInput(f"path must name a file: {text!r}")
    parent = dest.parent
    if db_path != ":memory:":
        live = Path(db_path).resolve()
        target = Path(os.path.realpath(parent)) / dest.name
        if target in (live, Path(f"{live}-wal"), Path(f"{live}-shm"), Path(f"{live}-journal")):
            raise InvalidInput("path must not be the gateway's database or one of its journal files")
    if os.path.lexists(dest):
        raise AlreadyExists(f"{text} already exists; a backup never overwrites a file, choose a new name")
    if not parent.is_dir():
        raise InvalidInput(f"the directory {parent} does not exist")
    return dest


async def write_backup(db: Database, raw_path: object, now: int) -> BackupResult:
    """Write a consistent copy of `db` to the new file `raw_path` and describe what it holds."""
    dest = check_destination(raw_path, db.path)
    tmp = dest.parent / f".{dest.name}.partial-{secrets.token_hex(4)}"
    try:
        try:
            # The file holds bearer ecash: only the owner may read it, from its first byte on
            # (sqlite keeps the mode of an existing file and gives its journal the same).
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot write the backup to {dest.parent}: {exc.strerror or exc}") from None
        try:
            await db.copy_to(str(tmp))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the backup to {dest.parent}: {exc}") from None
        result = await asyncio.to_thread(_seal, tmp, dest, now)
    finally:
        for leftover in (tmp, Path(f"{tmp}-journal"), Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            if os.path.lexists(leftover):
                leftover.unlink()
    return result


def _seal(tmp: Path, dest: Path, now: int) -> BackupResult:
    """Check the copy, make it one file, flush it, link it to `dest` (never replacing a file)."""
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            status = conn.execute("PRAGMA integrity_check").fetchone()
            if status is None or status[0] != "ok":
                raise StoreError(f"the backup copy failed its integrity check: {status}")
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute(f"CREATE TABLE {MARKER} (taken_at INTEGER NOT NULL)")
            conn.execute(f"INSERT INTO {MARKER} (taken_at) VALUES (?)", (now,))
            counts = _counts(conn)
        finally:
            conn.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, dest)
        except FileExistsError:
            raise AlreadyExists(
                f"{dest} appeared while the backup was written; it was left alone, choose a new name"
            ) from None
        _fsync_dir(dest.parent)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot check the backup copy: {exc}") from None
    except OSError as exc:
        raise StoreError(f"cannot write the backup to {dest}: {exc.strerror or exc}") from None
    return BackupResult(
        path=str(dest),
        size_bytes=dest.stat().st_size,
        created_at=now,
        **counts,
    )


async def take_restore_marker(db: Database) -> int | None:
    """If `db` is a restored backup, remove its marker and return when the backup was taken."""
    async with db.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (MARKER,)
    ) as cur:
        if await cur.fetchone() is None:
            return None
    async with db.transaction() as conn:
        async with conn.execute(f"SELECT MAX(taken_at) FROM {MARKER}") as cur:
            row = await cur.fetchone()
        await conn.execute(f"DROP TABLE {MARKER}")
    return int(row[0]) if row is not None and row[0] is not None else 0


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    def one(sql: str) -> int:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    return {
        "schema_version": one("PRAGMA user_version"),
        "federations": one("SELECT COUNT(*) FROM federations"),
        "ecash_notes": one("SELECT COUNT(*) FROM ecash_notes WHERE state = 'unspent'"),
        "ecash_msat": one("SELECT SUM(amount_msat) FROM ecash_notes WHERE state = 'unspent'"),
        "payments": one("SELECT COUNT(*) FROM payments"),
        "peers": one("SELECT COUNT(*) FROM peers"),
    }


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
