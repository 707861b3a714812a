"""Repository of joined federations and the fake-scid allocator."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

import aiosqlite

from fedimint_gw.domain.amount import FeeSchedule
from fedimint_gw.domain.ids import FederationId, ShortChannelId


class FederationState(enum.Enum):
    """Whether the gateway serves a federation."""

    ACTIVE = "active"
    LEFT = "left"


@dataclass(frozen=True)
class FederationRecord:
    """A joined federation as stored."""

    federation_id: FederationId
    name: str
    invite_code: str
    api_major: int
    api_minor: int
    scid: ShortChannelId
    fees: FeeSchedule
    config: dict[str, Any]
    state: FederationState
    created_at: int
    updated_at: int


def _row_to_record(row: aiosqlite.Row) -> FederationRecord:
    return FederationRecord(
        federation_id=FederationId(row["federation_id"]),
        name=row["name"],
        invite_code=row["invite_code"],
        api_major=row["api_major"],
        api_minor=row["api_minor"],
        scid=ShortChannelId.from_int(row["scid"]),
        fees=FeeSchedule(row["fee_base_msat"], row["fee_ppm"]),
        config=json.loads(row["config_json"]),
        state=FederationState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def next_scid_index(conn: aiosqlite.Connection) -> int:
    """Reserve the next federation index (inside the caller's transaction); never reused."""
    await conn.execute("UPDATE scid_allocator SET last_index = last_index + 1 WHERE id = 1")
    async with conn.execute("SELECT last_index FROM scid_allocator WHERE id = 1") as cur:
        row = await cur.fetchone()
    if row is None:
        raise RuntimeError("scid allocator row missing: database not migrated")
    return int(row[0])


async def insert(conn: aiosqlite.Connection, rec: FederationRecord) -> None:
    """Insert a new federation, or reactivate one that was left (keeping its scid)."""
    await conn.execute(
        """INSERT INTO federations (federation_id, name, invite_code, api_major, api_minor, scid,
               fee_base_msat, fee_ppm, config_json, state, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(federation_id) DO UPDATE SET
               name=excluded.name, invite_code=excluded.invite_code, api_major=excluded.api_major,
               api_minor=excluded.api_minor, config_json=excluded.config_json,
               state=excluded.state, updated_at=excluded.updated_at""",
        (
            rec.federation_id.hex,
            rec.name,
            rec.invite_code,
            rec.api_major,
            rec.api_minor,
            rec.scid.to_int(),
            rec.fees.base_msat,
            rec.fees.ppm,
            json.dumps(rec.config, sort_keys=True),
            rec.state.value,
            rec.created_at,
            rec.updated_at,
        ),
    )


async def get(conn: aiosqlite.Connection, fid: FederationId) -> FederationRecord | None:
    """The federation with this id, in any state, or None."""
    async with conn.execute("SELECT * FROM federations WHERE federation_id = ?", (fid.hex,)) as cur:
        row = await cur.fetchone()
    return _row_to_record(row) if row is not None else None


async def list_all(
    conn: aiosqlite.Connection, state: FederationState | None = None
) -> list[FederationRecord]:
    """Every federation (optionally only those in `state`), oldest first."""
    args: tuple[str, ...] = ()
    query = "SELECT * FROM federations ORDER BY created_at, federation_id"
    if state is not None:
        query = "SELECT * FROM federations WHERE state = ? ORDER BY created_at, federation_id"
        args = (state.value,)
    async with conn.execute(query, args) as cur:
        rows = await cur.fetchall()
    return [_row_to_record(r) for r in rows]


async def set_state(conn: aiosqlite.Connection, fid: FederationId, state: FederationState, now: int) -> None:
    await conn.execute(
        "UPDATE federations SET state = ?, updated_at = ? WHERE federation_id = ?",
        (state.value, now, fid.hex),
    )


async def set_fees(conn: aiosqlite.Connection, fid: FederationId, fees: FeeSchedule, now: int) -> None:
    await conn.execute(
        "UPDATE federations SET fee_base_msat = ?, fee_ppm = ?, updated_at = ? WHERE federation_id = ?",
        (fees.base_msat, fees.ppm, now, fid.hex),
    )


async def set_pair_fees(
    conn: aiosqlite.Connection, source: FederationId, target: FederationId, fees: FeeSchedule, now: int
) -> None:
    """Fees for swaps from `source` to `target` (overrides the target's own fees)."""
    await conn.execute(
        """INSERT INTO swap_fees
               (source_federation_id, target_federation_id, fee_base_msat, fee_ppm, updated_at)
           VALUES (?, ?, ?, ?, ?)
           ON CONFLICT(source_federation_id, target_federation_id) DO UPDATE SET
               fee_base_msat=excluded.fee_base_msat, fee_ppm=excluded.fee_ppm,
               updated_at=excluded.updated_at""",
        (source.hex, target.hex, fees.base_msat, fees.ppm, now),
    )


async def pair_fees(
    conn: aiosqlite.Connection, source: FederationId, target: FederationId
) -> FeeSchedule | None:
    """The swap fee override for this ordered pair, if any."""
    async with conn.execute(
        "SELECT fee_base_msat, fee_ppm FROM swap_fees "
        "WHERE source_federation_id = ? AND target_federation_id = ?",
        (source.hex, target.hex),
    ) as cur:
        row = await cur.fetchone()
    return FeeSchedule(row[0], row[1]) if row is not None else None
