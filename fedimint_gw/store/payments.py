"""Repository of payment flows (the `payments` table)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import aiosqlite

from fedimint_gw.domain.payment import PaymentKind, PaymentState

FEDERATION_FEE = "federation_fee_msat"  # the key in `data` (no column: no migration needed)


@dataclass(frozen=True)
class PaymentRecord:
    """One flow as stored. `data` holds flow-specific fields (contract, invoice, ...)."""

    payment_id: str
    kind: PaymentKind
    state: PaymentState
    payment_hash: str
    amount_msat: int
    created_at: int
    updated_at: int
    federation_id: str | None = None
    target_federation_id: str | None = None
    fee_msat: int = 0
    htlc_scid: str | None = None
    htlc_id: int | None = None
    preimage: str | None = None
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def federation_fee_msat(self) -> int | None:
        """What the federations took for this payment's own transactions (funding, claim), kept
        in `data`; None when not recorded (older records, kinds that record their fees in
        `fee_msat`). See services/payments/federation_fees.py."""
        took = self.data.get(FEDERATION_FEE)
        return None if took is None else int(took)

    def advance(self, state: PaymentState, now: int, **changes: Any) -> PaymentRecord:
        """A copy in `state` with `changes` applied (data is merged, not replaced)."""
        data = {**self.data, **changes.pop("data", {})}
        return replace(self, state=state, updated_at=now, data=data, **changes)

    def released(self, now: int) -> PaymentRecord:
        """A v2 registration a swap or a peer forward had taken, free again for an HTLC: back
        to REGISTERED, without the taker's `swap` mark (`advance` merges data, and a stale mark
        would make a later HTLC's hold look like an orphaned swap's at the next start)."""
        data = {k: v for k, v in self.data.items() if k != "swap"}
        return replace(self, state=PaymentState.REGISTERED, updated_at=now, data=data)


def _row(row: aiosqlite.Row) -> PaymentRecord:
    return PaymentRecord(
        payment_id=row["payment_id"],
        kind=PaymentKind(row["kind"]),
        state=PaymentState(row["state"]),
        payment_hash=row["payment_hash"],
        amount_msat=row["amount_msat"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        federation_id=row["federation_id"],
        target_federation_id=row["target_federation_id"],
        fee_msat=row["fee_msat"],
        htlc_scid=row["htlc_scid"],
        htlc_id=row["htlc_id"],
        preimage=row["preimage"],
        error=row["error"],
        data=json.loads(row["data_json"]),
    )


async def save(conn: aiosqlite.Connection, rec: PaymentRecord) -> None:
    """Insert or update (by payment id)."""
    await conn.execute(
        """INSERT INTO payments (payment_id, kind, state, federation_id, target_federation_id, payment_hash,
               amount_msat, fee_msat, htlc_scid, htlc_id, preimage, error, data_json, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(payment_id) DO UPDATE SET
               state=excluded.state, fee_msat=excluded.fee_msat, preimage=excluded.preimage,
               error=excluded.error, data_json=excluded.data_json, updated_at=excluded.updated_at,
               htlc_scid=excluded.htlc_scid, htlc_id=excluded.htlc_id,
               target_federation_id=excluded.target_federation_id""",
        (
            rec.payment_id,
            rec.kind.value,
            rec.state.value,
            rec.federation_id,
            rec.target_federation_id,
            rec.payment_hash,
            rec.amount_msat,
            rec.fee_msat,
            rec.htlc_scid,
            rec.htlc_id,
            rec.preimage,
            rec.error,
            json.dumps(rec.data, sort_keys=True),
            rec.created_at,
            rec.updated_at,
        ),
    )


async def get(conn: aiosqlite.Connection, payment_id: str) -> PaymentRecord | None:
    async with conn.execute("SELECT * FROM payments WHERE payment_id = ?", (payment_id,)) as cur:
        row = await cur.fetchone()
    return _row(row) if row is not None else None


async def by_htlc(conn: aiosqlite.Connection, scid: str, htlc_id: int) -> PaymentRecord | None:
    """The flow of one incoming HTLC."""
    async with conn.execute(
        "SELECT * FROM payments WHERE htlc_scid = ? AND htlc_id = ?", (scid, htlc_id)
    ) as cur:
        row = await cur.fetchone()
    return _row(row) if row is not None else None


async def by_hash(conn: aiosqlite.Connection, payment_hash: str, kind: PaymentKind) -> list[PaymentRecord]:
    async with conn.execute(
        "SELECT * FROM payments WHERE payment_hash = ? AND kind = ? ORDER BY created_at",
        (payment_hash, kind.value),
    ) as cur:
        rows = await cur.fetchall()
    return [_row(r) for r in rows]


async def unfinished(conn: aiosqlite.Connection) -> list[PaymentRecord]:
    """Flows not in a terminal state (and not merely waiting for an HTLC)."""
    async with conn.execute(
        "SELECT * FROM payments WHERE state NOT IN ('succeeded', 'failed', 'refunded', 'registered') "
        "ORDER BY created_at"
    ) as cur:
        rows = await cur.fetchall()
    return [_row(r) for r in rows]


async def resolving_receives(conn: aiosqlite.Connection) -> list[PaymentRecord]:
    """Receives that answered `resolve` and whose fate in lightningd is not confirmed yet."""
    async with conn.execute(
        "SELECT * FROM payments WHERE kind = 'receive' AND state = 'succeeded' "
        "AND json_extract(data_json, '$.lightning') = 'resolving' ORDER BY created_at"
    ) as cur:
        return [_row(r) for r in await cur.fetchall()]


async def registered_hashes(conn: aiosqlite.Connection) -> list[tuple[str, str]]:
    """(payment hash, federation id) of v2 receives still waiting for or holding their HTLC."""
    async with conn.execute(
        "SELECT payment_hash, federation_id FROM payments WHERE kind = 'receive' "
        "AND state IN ('registered', 'htlc_held', 'funded') AND federation_id IS NOT NULL "
        "AND json_extract(data_json, '$.api') = 'v2'"
    ) as cur:
        rows = await cur.fetchall()
    return [(r[0], r[1]) for r in rows]


async def delete_expired_registrations(conn: aiosqlite.Connection, expired_before: int) -> list[str]:
    """Delete v2 invoice registrations still waiting for their HTLC whose invoice expired
    before `expired_before` (unix seconds); returns their payment hashes. Nothing was paid to
    them, so nothing is lost: an HTLC arriving later is not the gateway's."""
    where = (
        "kind = 'receive' AND state = 'registered' AND json_extract(data_json, '$.api') = 'v2' "
        "AND COALESCE(json_extract(data_json, '$.invoice_expires_at'), 0) < ?"
    )
    async with conn.execute(f"SELECT payment_hash FROM payments WHERE {where}", (expired_before,)) as cur:
        hashes = [str(r[0]) for r in await cur.fetchall()]
    await conn.execute(f"DELETE FROM payments WHERE {where}", (expired_before,))
    return hashes


async def page(
    conn: aiosqlite.Connection,
    federation_id: str | None,
    state: PaymentState | None,
    limit: int,
    before: int | None = None,
) -> list[tuple[int, PaymentRecord]]:
    """(sequence number, payment), newest first, optionally filtered. `before` is the sequence
    number of the last payment of the previous page (exact even within one second)."""
    clauses, args = [], []
    if federation_id:
        clauses.append("(federation_id = ? OR target_federation_id = ?)")
        args += [federation_id, federation_id]
    if state:
        clauses.append("state = ?")
        args.append(state.value)
    if before is not None:
        clauses.append("rowid < ?")
        args.append(str(before))
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    async with conn.execute(
        f"SELECT rowid AS seq, * FROM payments {where} ORDER BY rowid DESC LIMIT ?", (*args, limit)
    ) as cur:
        rows = await cur.fetchall()
    return [(int(r["seq"]), _row(r)) for r in rows]


async def between(conn: aiosqlite.Connection, start: int, end: int) -> list[PaymentRecord]:
    async with conn.execute(
        "SELECT * FROM payments WHERE created_at >= ? AND created_at < ? AND state != 'registered'",
        (start, end),
    ) as cur:
        rows = await cur.fetchall()
    return [_row(r) for r in rows]


async def has_fingerprint(conn: aiosqlite.Connection, fingerprint: str) -> bool:
    """Whether an exchange already carried notes with this fingerprint."""
    async with conn.execute(
        "SELECT 1 FROM payments WHERE kind = ? AND json_extract(data_json, '$.fingerprint') = ? LIMIT 1",
        (PaymentKind.MIGRATE.value, fingerprint),
    ) as cur:
        return await cur.fetchone() is not None
