"""Repository of per-federation operator controls (the `federation_controls` table)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import aiosqlite


class Switch(enum.Enum):
    """Whether one kind of flow is allowed for a federation."""

    ENABLED = "enabled"
    DISABLED = "disabled"


class FederationMode(enum.Enum):
    """`drain` winds a federation down: no new money comes in, money may still go out."""

    NORMAL = "normal"
    DRAIN = "drain"


@dataclass(frozen=True)
class Controls:
    """One federation's controls. The defaults are what a federation without a row gets."""

    federation_id: str
    max_ecash_msat: int | None = None
    low_water_msat: int | None = None
    receives: Switch = Switch.ENABLED
    sends: Switch = Switch.ENABLED
    swaps_in: Switch = Switch.ENABLED
    swaps_out: Switch = Switch.ENABLED
    mode: FederationMode = FederationMode.NORMAL
    updated_at: int = 0


async def get(conn: aiosqlite.Connection, federation_id: str) -> Controls:
    """The federation's controls (the defaults when none were ever set)."""
    async with conn.execute(
        "SELECT * FROM federation_controls WHERE federation_id = ?", (federation_id,)
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return Controls(federation_id)
    return Controls(
        federation_id=row["federation_id"],
        max_ecash_msat=row["max_ecash_msat"],
        low_water_msat=row["low_water_msat"],
        receives=Switch(row["receives"]),
        sends=Switch(row["sends"]),
        swaps_in=Switch(row["swaps_in"]),
        swaps_out=Switch(row["swaps_out"]),
        mode=FederationMode(row["mode"]),
        updated_at=row["updated_at"],
    )


async def save(conn: aiosqlite.Connection, c: Controls) -> None:
    """Insert or replace a federation's controls (inside the caller's transaction)."""
    await conn.execute(
        """INSERT INTO federation_controls (federation_id, max_ecash_msat, low_water_msat, receives, sends,
               swaps_in, swaps_out, mode, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(federation_id) DO UPDATE SET
               max_ecash_msat=excluded.max_ecash_msat, low_water_msat=excluded.low_water_msat,
               receives=excluded.receives, sends=excluded.sends, swaps_in=excluded.swaps_in,
               swaps_out=excluded.swaps_out, mode=excluded.mode, updated_at=excluded.updated_at""",
        (
            c.federation_id,
            c.max_ecash_msat,
            c.low_water_msat,
            c.receives.value,
            c.sends.value,
            c.swaps_in.value,
            c.swaps_out.value,
            c.mode.value,
            c.updated_at,
        ),
    )


async def pending_gain_msat(conn: aiosqlite.Connection, federation_id: str) -> int:
    """Ecash the gateway will gain in this federation from flows not finished yet: sends, swaps
    and peer forwards out of it claim the user's contract (amount + fee) when they succeed."""
    async with conn.execute(
        "SELECT COALESCE(SUM(amount_msat + fee_msat), 0) FROM payments WHERE federation_id = ? "
        "AND kind IN ('send', 'swap', 'peer') AND json_extract(data_json, '$.contract_id') IS NOT NULL "
        "AND state NOT IN ('succeeded', 'failed', 'refunded', 'cancelling', 'registered')",
        (federation_id,),
    ) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def recorded_ids(conn: aiosqlite.Connection, payment_ids: list[str]) -> set[str]:
    """Which of `payment_ids` are in the payments log."""
    if not payment_ids:
        return set()
    marks = ", ".join("?" for _ in payment_ids)
    async with conn.execute(
        f"SELECT payment_id FROM payments WHERE payment_id IN ({marks})", payment_ids
    ) as cur:
        return {str(r[0]) for r in await cur.fetchall()}
