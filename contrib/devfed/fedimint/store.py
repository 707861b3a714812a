"""SQLite persistence of devfed's Fedimint family: config, guardian key shares, accepted
transactions, mint outputs, spent nonces and used blind nonces.

Synchronous sqlite3 in WAL mode, like the other devfed families; the sequencer applies one
transaction inside one ``with store.atomic():`` block, so a crash never leaves half of one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tbs_key_shares (
    peer_id INTEGER NOT NULL, amount_msat INTEGER NOT NULL, secret_hex TEXT NOT NULL,
    PRIMARY KEY (peer_id, amount_msat));
CREATE TABLE IF NOT EXISTS transactions (
    session INTEGER PRIMARY KEY AUTOINCREMENT, txid TEXT UNIQUE NOT NULL, tx_hex TEXT NOT NULL,
    source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (txid TEXT PRIMARY KEY, error_hex TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mint_outputs (
    txid TEXT NOT NULL, out_idx INTEGER NOT NULL, amount_msat INTEGER NOT NULL,
    blind_nonce_hex TEXT NOT NULL, PRIMARY KEY (txid, out_idx));
CREATE TABLE IF NOT EXISTS spent_nonces (nonce_hex TEXT PRIMARY KEY, txid TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS used_blind_nonces (blind_nonce_hex TEXT PRIMARY KEY, txid TEXT NOT NULL);
"""


@dataclass(frozen=True)
class StoredOutput:
    """A mint output of an accepted transaction."""

    amount_msat: int
    blind_nonce: bytes


class FedimintStore:
    """All persistent state of one devfed Fedimint federation, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._in_tx = False

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection, for a module's own tables (writes inside ``atomic()``)."""
        return self._conn

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One SQLite transaction for the block (not re-entrant)."""
        if self._in_tx:
            raise RuntimeError("nested atomic() blocks are not supported")
        self._conn.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
        finally:
            self._in_tx = False

    def get_meta(self, key: str) -> str | None:
        """A meta value, or None."""
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value."""
        self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def save_key_share(self, peer_id: int, amount_msat: int, secret: bytes) -> None:
        """Store one guardian's secret key share for one tier."""
        self._conn.execute(
            "INSERT OR REPLACE INTO tbs_key_shares VALUES (?, ?, ?)", (peer_id, amount_msat, secret.hex())
        )

    def key_shares(self, peer_id: int) -> dict[int, bytes]:
        """One guardian's secret key shares by tier (only that guardian's rows are read)."""
        rows = self._conn.execute(
            "SELECT amount_msat, secret_hex FROM tbs_key_shares WHERE peer_id=?", (peer_id,)
        ).fetchall()
        return {int(a): bytes.fromhex(s) for a, s in rows}

    def transaction(self, txid: bytes) -> tuple[int, bytes] | None:
        """(session, transaction bytes) of an accepted transaction."""
        row = self._conn.execute(
            "SELECT session, tx_hex FROM transactions WHERE txid=?", (txid.hex(),)
        ).fetchone()
        return None if row is None else (int(row[0]), bytes.fromhex(row[1]))

    def add_transaction(self, txid: bytes, tx: bytes, source: str) -> int:
        """Record an accepted transaction; its session number."""
        cur = self._conn.execute(
            "INSERT INTO transactions(txid, tx_hex, source) VALUES (?, ?, ?)", (txid.hex(), tx.hex(), source)
        )
        return int(cur.lastrowid or 0)

    def session_transaction(self, session: int) -> bytes | None:
        """The txid accepted in `session` (1-based), if any."""
        row = self._conn.execute("SELECT txid FROM transactions WHERE session=?", (session,)).fetchone()
        return None if row is None else bytes.fromhex(row[0])

    def output_amounts(self, txid: bytes) -> list[int]:
        """The amounts of an accepted transaction's mint outputs, by output index."""
        rows = self._conn.execute(
            "SELECT amount_msat FROM mint_outputs WHERE txid=? ORDER BY out_idx", (txid.hex(),)
        ).fetchall()
        return [int(r[0]) for r in rows]

    def session_count(self) -> int:
        """Accepted transactions (devfed runs one transaction per session)."""
        return int(self._conn.execute("SELECT COUNT(*) FROM transactions").fetchone()[0])

    def rejection(self, txid: bytes) -> bytes | None:
        """The encoded TransactionError of a transaction refused earlier."""
        row = self._conn.execute("SELECT error_hex FROM rejected WHERE txid=?", (txid.hex(),)).fetchone()
        return None if row is None else bytes.fromhex(row[0])

    def add_rejection(self, txid: bytes, error: bytes) -> None:
        """Remember why a transaction was refused (the first reason wins)."""
        self._conn.execute("INSERT OR IGNORE INTO rejected VALUES (?, ?)", (txid.hex(), error.hex()))

    def add_output(self, txid: bytes, out_idx: int, amount_msat: int, blind_nonce: bytes) -> None:
        """Record a mint output of an accepted transaction."""
        self._conn.execute(
            "INSERT INTO mint_outputs VALUES (?, ?, ?, ?)",
            (txid.hex(), out_idx, amount_msat, blind_nonce.hex()),
        )

    def output(self, txid: bytes, out_idx: int) -> StoredOutput | None:
        """A mint output of an accepted transaction."""
        row = self._conn.execute(
            "SELECT amount_msat, blind_nonce_hex FROM mint_outputs WHERE txid=? AND out_idx=?",
            (txid.hex(), out_idx),
        ).fetchone()
        return None if row is None else StoredOutput(int(row[0]), bytes.fromhex(row[1]))

    def spent_by(self, nonce: bytes) -> bytes | None:
        """The txid that spent a note nonce, or None."""
        row = self._conn.execute("SELECT txid FROM spent_nonces WHERE nonce_hex=?", (nonce.hex(),)).fetchone()
        return None if row is None else bytes.fromhex(row[0])

    def mark_spent(self, nonce: bytes, txid: bytes) -> None:
        """Add a nonce to the spent set."""
        self._conn.execute("INSERT INTO spent_nonces VALUES (?, ?)", (nonce.hex(), txid.hex()))

    def blind_nonce_used(self, blind_nonce: bytes) -> bool:
        """Whether a blind nonce was already signed (upstream refuses reuse)."""
        row = self._conn.execute(
            "SELECT 1 FROM used_blind_nonces WHERE blind_nonce_hex=?", (blind_nonce.hex(),)
        ).fetchone()
        return row is not None

    def mark_blind_nonce(self, blind_nonce: bytes, txid: bytes) -> None:
        """Record a signed blind nonce."""
        self._conn.execute("INSERT INTO used_blind_nonces VALUES (?, ?)", (blind_nonce.hex(), txid.hex()))

    def count_spent(self) -> int:
        """Size of the spent set."""
        return int(self._conn.execute("SELECT COUNT(*) FROM spent_nonces").fetchone()[0])
