"""Repository of peer gateways: links, per-link ledgers, seen nonces and settlements."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from typing import Any

import aiosqlite

from fedimint_gw.domain.payment import PaymentKind
from fedimint_gw.peer.ledger import Entry


class PeerState(enum.Enum):
    """Where a link stands."""

    INTRODUCED = "introduced"  # the peer said hello; our operator has not added it
    PENDING = "pending"  # our operator added it; the peer has not added us (or we never reached it)
    ACTIVE = "active"  # both operators added each other; keys verified
    REMOVED = "removed"  # our operator removed it; the ledger is kept


class SettlementState(enum.Enum):
    """A settlement's steps (debtor: requested -> paying -> paid -> done; creditor: invoiced -> done)."""

    REQUESTED = "requested"
    INVOICED = "invoiced"
    PAYING = "paying"
    PAID = "paid"
    DONE = "done"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (SettlementState.DONE, SettlementState.FAILED)


@dataclass(frozen=True)
class PeerRecord:
    """One peer link as stored."""

    node_id: str
    url: str | None
    state: PeerState
    credit_limit_msat: int
    created_at: int
    updated_at: int
    peer_credit_limit_msat: int = 0
    peer_key: str | None = None
    version: int = 0
    announce: dict[str, Any] = field(default_factory=dict)
    last_seen: int | None = None
    last_error: str | None = None
    last_error_at: int | None = None
    ledger_status: str = "unchecked"
    ledger_detail: str | None = None
    statement: dict[str, Any] | None = None

    def with_changes(self, now: int, **changes: Any) -> PeerRecord:
        return replace(self, updated_at=now, **changes)


@dataclass(frozen=True)
class Settlement:
    """One settlement of a link, on either side."""

    settlement_id: str
    node_id: str
    role: str
    state: SettlementState
    amount_msat: int
    created_at: int
    updated_at: int
    invoice: str | None = None
    payment_hash: str | None = None
    preimage: str | None = None
    error: str | None = None

    def advance(self, state: SettlementState, now: int, **changes: Any) -> Settlement:
        return replace(self, state=state, updated_at=now, **changes)


def _peer(row: aiosqlite.Row) -> PeerRecord:
    return PeerRecord(
        node_id=row["node_id"],
        url=row["url"],
        state=PeerState(row["state"]),
        credit_limit_msat=row["credit_limit_msat"],
        peer_credit_limit_msat=row["peer_credit_limit_msat"],
        peer_key=row["peer_key"],
        version=row["version"],
        announce=json.loads(row["announce_json"]),
        last_seen=row["last_seen"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        ledger_status=row["ledger_status"],
        ledger_detail=row["ledger_detail"],
        statement=json.loads(row["statement_json"]) if row["statement_json"] else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def save(conn: aiosqlite.Connection, rec: PeerRecord) -> None:
    """Insert or replace a whole peer link (tests and new rows only: the services change links
    field by field with the functions below, so that no write undoes a concurrent one)."""
    await conn.execute(
        """INSERT OR REPLACE INTO peers (node_id, url, state, credit_limit_msat, peer_credit_limit_msat,
               peer_key, version, announce_json, last_seen, last_error, last_error_at, ledger_status,
               ledger_detail, statement_json, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            rec.node_id,
            rec.url,
            rec.state.value,
            rec.credit_limit_msat,
            rec.peer_credit_limit_msat,
            rec.peer_key,
            rec.version,
            json.dumps(rec.announce, sort_keys=True),
            rec.last_seen,
            rec.last_error,
            rec.last_error_at,
            rec.ledger_status,
            rec.ledger_detail,
            json.dumps(rec.statement, sort_keys=True) if rec.statement is not None else None,
            rec.created_at,
            rec.updated_at,
        ),
    )


async def add_or_update(conn: aiosqlite.Connection, node_id: str, url: str, limit: int, now: int) -> None:
    """The operator adds a peer (or changes its URL and credit): only those fields change, and a
    link that is not active becomes pending. Nothing a hello recorded is touched."""
    await conn.execute(
        """INSERT INTO peers (node_id, url, state, credit_limit_msat, created_at, updated_at)
           VALUES (?, ?, 'pending', ?, ?, ?)
           ON CONFLICT(node_id) DO UPDATE SET url = excluded.url,
               credit_limit_msat = excluded.credit_limit_msat,
               state = CASE WHEN peers.state = 'active' THEN 'active' ELSE 'pending' END,
               updated_at = excluded.updated_at""",
        (node_id, url, limit, now, now),
    )


async def set_state(
    conn: aiosqlite.Connection, node_id: str, state: PeerState, now: int, only_from: tuple[PeerState, ...]
) -> bool:
    """Change only a link's state, and only from one of `only_from`; False if it was not there."""
    marks = ", ".join("?" for _ in only_from)
    cur = await conn.execute(
        f"UPDATE peers SET state = ?, updated_at = ? WHERE node_id = ? AND state IN ({marks})",
        (state.value, now, node_id, *(s.value for s in only_from)),
    )
    return (cur.rowcount or 0) > 0


@dataclass(frozen=True)
class HelloFacts:
    """What a hello (ours answered, or the peer's) tells about a peer: the only fields it sets."""

    peer_key: str
    version: int
    peer_credit_limit_msat: int
    announce: dict[str, Any]


async def record_hello(
    conn: aiosqlite.Connection, node_id: str, facts: HelloFacts, state: PeerState | None, now: int
) -> bool:
    """Store a hello's facts (and `state`, if given) on a live link (pending or active) only:
    a link removed meanwhile stays removed, and the operator's URL and credit stay as they are.
    False if the link is not live."""
    cur = await conn.execute(
        """UPDATE peers SET peer_key = ?, version = ?, peer_credit_limit_msat = ?, announce_json = ?,
               last_seen = ?, last_error = NULL, last_error_at = NULL, state = COALESCE(?, state),
               updated_at = ?
           WHERE node_id = ? AND state IN ('pending', 'active')""",
        (
            facts.peer_key,
            facts.version,
            facts.peer_credit_limit_msat,
            json.dumps(facts.announce, sort_keys=True),
            now,
            state.value if state is not None else None,
            now,
            node_id,
        ),
    )
    return (cur.rowcount or 0) > 0


async def record_error(conn: aiosqlite.Connection, node_id: str, message: str, now: int) -> None:
    """A hello to the peer failed: only the error fields change."""
    await conn.execute(
        "UPDATE peers SET last_error = ?, last_error_at = ?, updated_at = ? WHERE node_id = ?",
        (message, now, now, node_id),
    )


async def record_ledger_check(
    conn: aiosqlite.Connection,
    node_id: str,
    status: str,
    detail: str | None,
    statement: dict[str, Any] | None,
    now: int,
) -> None:
    """A ledger comparison's outcome (and the peer's statement, if given): only those fields change."""
    await conn.execute(
        """UPDATE peers SET ledger_status = ?, ledger_detail = ?,
               statement_json = COALESCE(?, statement_json), updated_at = ? WHERE node_id = ?""",
        (status, detail, json.dumps(statement, sort_keys=True) if statement else None, now, node_id),
    )


async def record_statement(
    conn: aiosqlite.Connection, node_id: str, statement: dict[str, Any], now: int
) -> None:
    """Keep the peer's last signed statement: only that field changes."""
    await conn.execute(
        "UPDATE peers SET statement_json = ?, updated_at = ? WHERE node_id = ?",
        (json.dumps(statement, sort_keys=True), now, node_id),
    )


async def get(conn: aiosqlite.Connection, node_id: str) -> PeerRecord | None:
    async with conn.execute("SELECT * FROM peers WHERE node_id = ?", (node_id,)) as cur:
        row = await cur.fetchone()
    return _peer(row) if row is not None else None


async def all_peers(conn: aiosqlite.Connection) -> list[PeerRecord]:
    async with conn.execute("SELECT * FROM peers ORDER BY created_at, node_id") as cur:
        rows = await cur.fetchall()
    return [_peer(r) for r in rows]


async def entries(conn: aiosqlite.Connection, node_id: str) -> list[Entry]:
    async with conn.execute(
        "SELECT entry_id, delta_msat FROM peer_ledger WHERE node_id = ? ORDER BY entry_id", (node_id,)
    ) as cur:
        rows = await cur.fetchall()
    return [Entry(r[0], r[1]) for r in rows]


async def balance(conn: aiosqlite.Connection, node_id: str) -> int:
    async with conn.execute(
        "SELECT COALESCE(SUM(delta_msat), 0) FROM peer_ledger WHERE node_id = ?", (node_id,)
    ) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row is not None else 0


async def add_entry(conn: aiosqlite.Connection, node_id: str, entry: Entry, now: int) -> bool:
    """Record an entry once; False if it was already there (the call is idempotent)."""
    cur = await conn.execute(
        "INSERT OR IGNORE INTO peer_ledger (node_id, entry_id, delta_msat, created_at) VALUES (?, ?, ?, ?)",
        (node_id, entry.entry_id, entry.delta_msat, now),
    )
    return (cur.rowcount or 0) > 0


async def remember_nonce(conn: aiosqlite.Connection, node_id: str, nonce: str, now: int, ttl: int) -> bool:
    """Remember a request nonce; False if it was seen already (a replay). Forgets old ones."""
    await conn.execute("DELETE FROM peer_nonces WHERE seen_at < ?", (now - ttl,))
    cur = await conn.execute(
        "INSERT OR IGNORE INTO peer_nonces (node_id, nonce, seen_at) VALUES (?, ?, ?)", (node_id, nonce, now)
    )
    return (cur.rowcount or 0) > 0


async def forwards_in_flight(conn: aiosqlite.Connection, node_id: str, direction: str) -> dict[str, int]:
    """Forward ids and amounts of the unfinished forwards on a link ('in' or 'out')."""
    async with conn.execute(
        "SELECT json_extract(data_json, '$.forward_id'), json_extract(data_json, '$.forward_amount_msat') "
        "FROM payments WHERE kind = ? AND state NOT IN ('succeeded', 'failed', 'refunded') "
        "AND json_extract(data_json, '$.peer') = ? AND json_extract(data_json, '$.direction') = ?",
        (PaymentKind.PEER.value, node_id, direction),
    ) as cur:
        rows = await cur.fetchall()
    return {str(r[0]): int(r[1] or 0) for r in rows}


async def exchanges_in_flight(conn: aiosqlite.Connection, node_id: str) -> dict[str, int]:
    """Payment ids and amounts of the unfinished migrations and exchanges with a peer."""
    async with conn.execute(
        "SELECT payment_id, amount_msat FROM payments WHERE kind = ? "
        "AND state NOT IN ('succeeded', 'failed', 'refunded') AND json_extract(data_json, '$.peer') = ?",
        (PaymentKind.MIGRATE.value, node_id),
    ) as cur:
        rows = await cur.fetchall()
    return {str(r[0]): int(r[1] or 0) for r in rows}


async def set_kind(conn: aiosqlite.Connection, payment_id: str, kind: PaymentKind) -> None:
    """Change a payment's kind (a peer forward that fell back to Lightning becomes a send)."""
    await conn.execute("UPDATE payments SET kind = ? WHERE payment_id = ?", (kind.value, payment_id))


def _settlement(row: aiosqlite.Row) -> Settlement:
    return Settlement(
        settlement_id=row["settlement_id"],
        node_id=row["node_id"],
        role=row["role"],
        state=SettlementState(row["state"]),
        amount_msat=row["amount_msat"],
        invoice=row["invoice"],
        payment_hash=row["payment_hash"],
        preimage=row["preimage"],
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def save_settlement(conn: aiosqlite.Connection, s: Settlement) -> None:
    await conn.execute(
        """INSERT OR REPLACE INTO peer_settlements (settlement_id, node_id, role, state, amount_msat,
               invoice, payment_hash, preimage, error, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            s.settlement_id,
            s.node_id,
            s.role,
            s.state.value,
            s.amount_msat,
            s.invoice,
            s.payment_hash,
            s.preimage,
            s.error,
            s.created_at,
            s.updated_at,
        ),
    )


async def get_settlement(conn: aiosqlite.Connection, node_id: str, settlement_id: str) -> Settlement | None:
    async with conn.execute(
        "SELECT * FROM peer_settlements WHERE node_id = ? AND settlement_id = ?", (node_id, settlement_id)
    ) as cur:
        row = await cur.fetchone()
    return _settlement(row) if row is not None else None


async def settlements(conn: aiosqlite.Connection, node_id: str | None = None) -> list[Settlement]:
    query, args = "SELECT * FROM peer_settlements", []
    if node_id is not None:
        query, args = query + " WHERE node_id = ?", [node_id]
    async with conn.execute(query + " ORDER BY created_at", args) as cur:
        rows = await cur.fetchall()
    return [_settlement(r) for r in rows]
