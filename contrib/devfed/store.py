"""SQLite persistence of a federation: config, guardian secrets, transactions, spent notes,
contracts, offers, gateway registrations and the block-height counter.

The store is synchronous (sqlite3, WAL): every call is a few short statements on a local file,
and the sequencer runs them inside one ``with store.atomic():`` block per transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS guardian_secrets (peer_id INTEGER PRIMARY KEY, secrets TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, txid TEXT UNIQUE NOT NULL, body TEXT NOT NULL,
    result TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spent_notes (note_id TEXT PRIMARY KEY, txid TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contracts (
    contract_id TEXT PRIMARY KEY, body TEXT NOT NULL, state TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offers (payment_hash TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gateways_v1 (
    gateway_pubkey TEXT PRIMARY KEY, body TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS vetted_gateways (url TEXT PRIMARY KEY);
"""

Json = dict[str, object]


def _load(text: str) -> Json:
    return cast(Json, json.loads(text))


def _dump(value: object) -> str:
    return json.dumps(value, sort_keys=True)


class FederationStore:
    """All persistent federation state, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._depth = 0

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Run the block in one SQLite transaction (nested blocks join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
        finally:
            self._depth = 0

    # meta
    def get_meta(self, key: str) -> str | None:
        """A meta value, or None."""
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value."""
        self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # guardian secrets
    def save_secrets(self, peer_id: int, secrets: object) -> None:
        """Store one guardian's secret shares."""
        self._conn.execute("INSERT OR REPLACE INTO guardian_secrets VALUES (?, ?)", (peer_id, _dump(secrets)))

    def load_secrets(self) -> list[Json]:
        """Every guardian's secret shares, by peer id."""
        rows = self._conn.execute("SELECT secrets FROM guardian_secrets ORDER BY peer_id").fetchall()
        return [_load(r[0]) for r in rows]

    # transactions
    def get_transaction(self, txid: str) -> tuple[Json, Json] | None:
        """``(body, result)`` of an accepted transaction."""
        row = self._conn.execute("SELECT body, result FROM transactions WHERE txid=?", (txid,)).fetchone()
        return None if row is None else (_load(row[0]), _load(row[1]))

    def add_transaction(self, txid: str, body: object, result: object) -> None:
        """Record an accepted transaction."""
        self._conn.execute(
            "INSERT INTO transactions(txid, body, result) VALUES (?, ?, ?)",
            (txid, _dump(body), _dump(result)),
        )

    def count_transactions(self) -> int:
        """How many transactions were accepted."""
        return int(self._conn.execute("SELECT COUNT(*) FROM transactions").fetchone()[0])

    # spent notes
    def spent_by(self, note_id: str) -> str | None:
        """The txid that spent a note, or None."""
        row = self._conn.execute("SELECT txid FROM spent_notes WHERE note_id=?", (note_id,)).fetchone()
        return None if row is None else str(row[0])

    def mark_spent(self, note_id: str, txid: str) -> None:
        """Add a note to the spent set."""
        self._conn.execute("INSERT INTO spent_notes VALUES (?, ?)", (note_id, txid))

    def count_spent(self) -> int:
        """Size of the spent set."""
        return int(self._conn.execute("SELECT COUNT(*) FROM spent_notes").fetchone()[0])

    # contracts
    def get_contract(self, contract_id: str) -> tuple[Json, str, Json] | None:
        """``(body, state, data)`` of a contract."""
        row = self._conn.execute(
            "SELECT body, state, data FROM contracts WHERE contract_id=?", (contract_id,)
        ).fetchone()
        return None if row is None else (_load(row[0]), str(row[1]), _load(row[2]))

    def put_contract(self, contract_id: str, body: object, state: str, data: object) -> None:
        """Insert or update a contract."""
        self._conn.execute(
            "INSERT OR REPLACE INTO contracts VALUES (?, ?, ?, ?)",
            (contract_id, _dump(body), state, _dump(data)),
        )

    # offers
    def get_offer(self, payment_hash: str) -> Json | None:
        """An offer by payment hash."""
        row = self._conn.execute("SELECT body FROM offers WHERE payment_hash=?", (payment_hash,)).fetchone()
        return None if row is None else _load(row[0])

    def put_offer(self, payment_hash: str, body: object) -> None:
        """Insert or update an offer."""
        self._conn.execute("INSERT OR REPLACE INTO offers VALUES (?, ?)", (payment_hash, _dump(body)))

    # gateways
    def put_gateway_v1(self, gateway_pubkey: str, body: object, expires_at: float) -> None:
        """Store a v1 self-registration."""
        self._conn.execute(
            "INSERT OR REPLACE INTO gateways_v1 VALUES (?, ?, ?)", (gateway_pubkey, _dump(body), expires_at)
        )

    def list_gateways_v1(self, now: float) -> list[Json]:
        """Unexpired v1 registrations."""
        rows = self._conn.execute(
            "SELECT body FROM gateways_v1 WHERE expires_at > ? ORDER BY gateway_pubkey", (now,)
        ).fetchall()
        return [_load(r[0]) for r in rows]

    def vet_gateway(self, url: str, vetted: bool) -> None:
        """Add or remove a v2-vetted gateway URL."""
        if vetted:
            self._conn.execute("INSERT OR IGNORE INTO vetted_gateways VALUES (?)", (url,))
        else:
            self._conn.execute("DELETE FROM vetted_gateways WHERE url=?", (url,))

    def vetted_gateways(self) -> list[str]:
        """The v2-vetted gateway URLs."""
        return [str(r[0]) for r in self._conn.execute("SELECT url FROM vetted_gateways ORDER BY url")]
