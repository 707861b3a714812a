"""The gateway's SQLite database: WAL mode, numbered migrations applied at open.

Migrations are the files `migrations/NNNN_name.sql`, applied in order inside one
transaction each; `PRAGMA user_version` records the last applied number. A database
newer than this code refuses to open rather than being misread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import aiosqlite

from fedimint_gw.errors import StoreError
from fedimint_gw.store.crash_points import CrashPoints

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered schema change."""

    number: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The packaged migrations, sorted by number; numbers must be 1, 2, 3, ... with no gap."""
    found: list[Migration] = []
    for entry in resources.files("fedimint_gw.store").joinpath("migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.number)
    for expected, mig in enumerate(found, start=1):
        if mig.number != expected:
            raise StoreError(f"migration numbering has a gap or duplicate at {mig.name}")
    return found


class Database:
    """One aiosqlite connection used from the gateway's event loop.

    All writes go through `transaction()`, which commits or rolls back as a unit.
    """

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._write_lock = asyncio.Lock()
        self._crash: CrashPoints | None = None

    @classmethod
    async def open(cls, path: str, migrations: list[Migration] | None = None) -> Database:
        """Open (creating if needed) the database at `path` and bring its schema up to date."""
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _owner_only(path)
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except Exception as exc:  # aiosqlite raises sqlite3 errors of several kinds
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        db = cls(conn, path)
        try:
            await db._migrate(migrations if migrations is not None else load_migrations())
        except BaseException:
            await conn.close()
            raise
        return db

    async def _migrate(self, migrations: list[Migration]) -> None:
        current = await self.schema_version()
        latest = migrations[-1].number if migrations else 0
        if current > latest:
            raise StoreError(
                f"database {self.path} has schema version {current}, newer than this gateway "
                f"knows ({latest}); upgrade the plugin instead of downgrading"
            )
        for mig in migrations:
            if mig.number <= current:
                continue
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                for statement in _split_sql(mig.sql):
                    await self._conn.execute(statement)
                await self._conn.execute(f"PRAGMA user_version={mig.number}")
                await self._conn.execute("COMMIT")
            except Exception as exc:
                await self._conn.execute("ROLLBACK")
                raise StoreError(f"migration {mig.name} failed: {exc}") from exc

    async def schema_version(self) -> int:
        """The number of the last migration applied."""
        async with self._conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row is not None else 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: commits when the block ends, rolls back if it raises.

        Transactions are serialised: the connection is shared by every coroutine.
        """
        async with self._write_lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                if self._crash is not None:
                    self._crash.after_rollback()
                raise
            await self._conn.execute("COMMIT")
            if self._crash is not None:
                self._crash.after_commit()

    async def enable_crash_points(self, crash: CrashPoints) -> None:
        """Developer-only: let `crash` kill the process after the commit of an armed step."""
        async with self._write_lock:
            await crash.install(self._conn)
            self._crash = crash

    async def copy_to(self, path: str) -> None:
        """Write a consistent copy of the whole database to the new file `path` (SQLite's online
        backup API). Holds the write lock, so no transaction of this connection is half done in
        the copy; reads go on. The caller picks a path that does not exist yet."""
        async with self._write_lock:
            target = await aiosqlite.connect(path, isolation_level=None)
            try:
                await self._conn.backup(target)
            finally:
                await target.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        """The connection, for reads outside a transaction."""
        return self._conn

    async def close(self) -> None:
        await self._conn.close()


def _owner_only(path: str) -> None:
    """The database holds bearer ecash: create it readable by its owner only (mode 0600), and
    take group and other access away from an existing one (lightningd hands plugins the user's
    umask, often 022). SQLite gives its -wal and -shm files the database file's mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = os.stat(path).st_mode
        if mode & 0o077:
            # Not ours to change (another owner): open it as it is.
            with contextlib.suppress(PermissionError):
                os.chmod(path, mode & 0o700)
    except OSError as exc:
        raise StoreError(f"cannot create database {path}: {exc.strerror or exc}") from exc
    else:
        os.close(fd)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (our migrations contain no ';' inside literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]
