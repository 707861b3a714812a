"""The wallet's SQLite file: the joined federation, notes, pending issuances and contracts."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import cast

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notes (secret TEXT PRIMARY KEY, amount_msat INTEGER NOT NULL, C TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (txid TEXT PRIMARY KEY, outputs TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contracts (
    contract_id TEXT PRIMARY KEY, role TEXT NOT NULL, data TEXT NOT NULL);
"""

Json = dict[str, object]


@dataclass(frozen=True)
class Note:
    """A spendable note: ``C = k * hash_to_curve(secret)`` for the denomination's key."""

    amount_msat: int
    secret: str
    C: str

    def to_input(self) -> Json:
        """The transaction input that spends it."""
        return {"kind": "note", "amount_msat": self.amount_msat, "secret": self.secret, "C": self.C}


class WalletStore:
    """Synchronous SQLite store (a handful of statements per operation)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path))
        self._conn.executescript(_SCHEMA)
        self._conn.commit()

    def close(self) -> None:
        """Close the file."""
        self._conn.close()

    def get_meta(self, key: str) -> str | None:
        """A meta value."""
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value."""
        with self._conn:
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def notes(self) -> list[Note]:
        """All notes, largest first."""
        rows = self._conn.execute("SELECT amount_msat, secret, C FROM notes ORDER BY amount_msat DESC")
        return [Note(int(a), str(s), str(c)) for a, s, c in rows]

    def add_notes(self, notes: list[Note], pending_txid: str | None = None) -> None:
        """Store new notes (and drop the pending issuance they came from)."""
        with self._conn:
            for n in notes:
                self._conn.execute(
                    "INSERT OR IGNORE INTO notes VALUES (?, ?, ?)", (n.secret, n.amount_msat, n.C)
                )
            if pending_txid is not None:
                self._conn.execute("DELETE FROM pending WHERE txid=?", (pending_txid,))

    def remove_notes(self, notes: list[Note]) -> None:
        """Forget notes (spent or handed out)."""
        with self._conn:
            for n in notes:
                self._conn.execute("DELETE FROM notes WHERE secret=?", (n.secret,))

    def add_pending(self, txid: str, outputs: list[Json]) -> None:
        """Remember blinding secrets of an issuance before submitting it."""
        with self._conn:
            self._conn.execute("INSERT OR REPLACE INTO pending VALUES (?, ?)", (txid, json.dumps(outputs)))

    def pending(self) -> dict[str, list[Json]]:
        """Issuances whose notes are not yet stored."""
        rows = self._conn.execute("SELECT txid, outputs FROM pending").fetchall()
        return {str(t): cast(list[Json], json.loads(o)) for t, o in rows}

    def put_contract(self, contract_id: str, role: str, data: Json) -> None:
        """Store a contract the wallet created (with its private keys)."""
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO contracts VALUES (?, ?, ?)", (contract_id, role, json.dumps(data))
            )

    def get_contract(self, contract_id: str) -> tuple[str, Json] | None:
        """``(role, data)`` of a stored contract."""
        row = self._conn.execute(
            "SELECT role, data FROM contracts WHERE contract_id=?", (contract_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), cast(Json, json.loads(row[1])))

    def contracts(self) -> list[tuple[str, str, Json]]:
        """Every stored contract as ``(id, role, data)``."""
        rows = self._conn.execute("SELECT contract_id, role, data FROM contracts").fetchall()
        return [(str(i), str(r), cast(Json, json.loads(d))) for i, r, d in rows]
