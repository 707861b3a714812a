"""Read-only queries behind the dashboard (never written through, never locked)."""

from __future__ import annotations

import aiosqlite

from fedimint_gw.store.payments import PaymentRecord, page


async def recent_payments(conn: aiosqlite.Connection, limit: int) -> list[PaymentRecord]:
    """The newest `limit` payments of every kind."""
    return [rec for _, rec in await page(conn, None, None, limit, None)]


async def ledger_entries(conn: aiosqlite.Connection, node_id: str, limit: int) -> list[tuple[str, int, int]]:
    """A peer's newest ledger entries: (entry id, delta msat, created at)."""
    async with conn.execute(
        "SELECT entry_id, delta_msat, created_at FROM peer_ledger WHERE node_id = ? "
        "ORDER BY created_at DESC, entry_id DESC LIMIT ?",
        (node_id, limit),
    ) as cur:
        rows = await cur.fetchall()
    return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]


async def open_payments(conn: aiosqlite.Connection) -> list[tuple[str, int]]:
    """Payments not in a final state: (payment id, last update)."""
    async with conn.execute(
        "SELECT payment_id, updated_at FROM payments "
        "WHERE state NOT IN ('succeeded', 'failed', 'refunded', 'registered')"
    ) as cur:
        rows = await cur.fetchall()
    return [(str(r[0]), int(r[1])) for r in rows]
