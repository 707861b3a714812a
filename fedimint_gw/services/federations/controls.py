"""Per-federation operator controls: `fedimint-setlimits`, and the checks every flow makes first.

Each flow calls one check at its entry point, before anything is funded or paid:
- `check_receive`: a Lightning payment into the federation (an HTLC, or a v2 invoice request);
- `check_send`: a user's contract paying out of the federation (Lightning or a peer gateway);
- `check_swap`: a swap from one federation into another on this gateway.
A refusal is a `PaymentRefused` naming the control that refused it. The controls live in
the database only (no cache), so a change applies to the next payment and survives restarts.

The ecash cap bounds the gateway's exposure to a federation (what it loses if the federation
disappears): it refuses the flows that make the gateway hold more of that federation's ecash,
that is sends and swaps out of it (the gateway claims the user's contract), counting what
unfinished flows will claim. Receives spend the gateway's ecash, so they never raise it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

from fedimint_gw.clock import Clock
from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import InvalidInput, NotFound, PaymentRefused
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.store import controls as repo
from fedimint_gw.store import federations as fed_repo
from fedimint_gw.store.controls import Controls, FederationMode, Switch
from fedimint_gw.store.db import Database

_SWITCHES = ("receives", "sends", "swaps_in", "swaps_out")
_ON = ("true", "on", "enabled", "enable", "yes", "1")
_OFF = ("false", "off", "disabled", "disable", "no", "0")
_UNSET = ("off", "none", "unset")


RESERVATION_TTL = 600  # seconds a cap reservation waits for its payment to be recorded


@dataclass
class CapReservations:
    """Ecash the cap has granted to flows that are not recorded yet, per federation.

    One per gateway (in `ServiceContext`): checks made at the same moment see each other, so
    concurrent sends cannot pass the cap together. A reservation ends once its payment is in
    the payments log (from then on the log counts it) or after `RESERVATION_TTL`.
    """

    granted: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)  # fid -> id -> (msat, at)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, federation_id: str) -> asyncio.Lock:
        return self.locks.setdefault(federation_id, asyncio.Lock())


def controls_json(c: Controls) -> dict[str, Any]:
    """The controls as `fedimint-info` and `fedimint-setlimits` show them."""
    return {
        "max_ecash_msat": c.max_ecash_msat,
        "low_water_msat": c.low_water_msat,
        "receives": c.receives.value,
        "sends": c.sends.value,
        "swaps_in": c.swaps_in.value,
        "swaps_out": c.swaps_out.value,
        "mode": c.mode.value,
    }


class FederationControls:
    """Reads, changes and enforces the controls; stateless apart from the database."""

    def __init__(self, db: Database, clock: Clock, reservations: CapReservations | None = None) -> None:
        self._db = db
        self._clock = clock
        self._reserved = reservations if reservations is not None else CapReservations()

    async def get(self, fid: FederationId) -> Controls:
        return await repo.get(self._db.conn, fid.hex)

    # ----- the checks ------------------------------------------------------------------
    async def check_receive(self, fid: FederationId, amount: Msat) -> None:
        """Refuse a receive into `fid` that its controls forbid (drain, or receives disabled)."""
        c = await self.get(fid)
        if c.mode is FederationMode.DRAIN:
            raise PaymentRefused(f"federation {fid.short()} is draining: it takes no new receives")
        if c.receives is Switch.DISABLED:
            raise PaymentRefused(f"receives into federation {fid.short()} are disabled by the operator")

    async def check_send(self, fid: FederationId, gain: Msat, payment_id: str) -> None:
        """Refuse a send out of `fid` that its controls forbid; `gain` is the contract the
        gateway claims if it succeeds (checked against the ecash cap, and reserved for
        `payment_id` until that payment is recorded)."""
        c = await self.get(fid)
        if c.sends is Switch.DISABLED:
            raise PaymentRefused(f"sends from federation {fid.short()} are disabled by the operator")
        await self._check_cap(c, fid, gain, payment_id)

    async def check_swap(
        self, source: FederationId, target: FederationId, gain: Msat, payment_id: str
    ) -> None:
        """Refuse a swap from `source` into `target` that either side's controls forbid."""
        src, dst = await self.get(source), await self.get(target)
        if src.swaps_out is Switch.DISABLED:
            raise PaymentRefused(f"swaps out of federation {source.short()} are disabled by the operator")
        if dst.mode is FederationMode.DRAIN:
            raise PaymentRefused(f"federation {target.short()} is draining: it takes no swaps in")
        if dst.swaps_in is Switch.DISABLED:
            raise PaymentRefused(f"swaps into federation {target.short()} are disabled by the operator")
        await self._check_cap(src, source, gain, payment_id)

    async def _check_cap(self, c: Controls, fid: FederationId, gain: Msat, payment_id: str) -> None:
        if c.max_ecash_msat is None:
            return
        async with self._reserved.lock(fid.hex):
            now = self._clock.now()
            granted = self._reserved.granted.setdefault(fid.hex, {})
            if granted:
                recorded = await repo.recorded_ids(self._db.conn, list(granted))
                for pid, (_, at) in list(granted.items()):
                    if pid in recorded or now - at > RESERVATION_TTL:
                        del granted[pid]
            held = (await NoteWallet(self._db, fid.hex, self._clock).balance()).value
            pending = await repo.pending_gain_msat(self._db.conn, fid.hex)
            pending += sum(msat for pid, (msat, _) in granted.items() if pid != payment_id)
            if held + pending + gain.value > c.max_ecash_msat:
                raise PaymentRefused(
                    f"federation {fid.short()} is at its ecash cap: the gateway holds {held} msat and "
                    f"{pending} msat are on their way, {gain.value} msat more would exceed the cap of "
                    f"{c.max_ecash_msat} msat"
                )
            granted[payment_id] = (gain.value, now)

    # ----- fedimint-setlimits ----------------------------------------------------------
    async def set_limits(self, federation_id: object, changes: dict[str, object]) -> dict[str, Any]:
        """Validate every change, then apply them all at once (a bad value changes nothing).
        Parameters left out (None or "") keep their value; `max_ecash_msat` and `low_water_msat`
        take an amount or "off"; the switches take true/false (enabled/disabled); `drain` true/false."""
        try:
            fid = FederationId.parse(federation_id)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        unknown = set(changes) - {"max_ecash_msat", "low_water_msat", "drain", *_SWITCHES}
        if unknown:
            raise InvalidInput(f"unknown control(s): {', '.join(sorted(unknown))}")
        fed = await fed_repo.get(self._db.conn, fid)
        if fed is None or fed.state is not fed_repo.FederationState.ACTIVE:
            raise NotFound(f"the gateway is not a member of federation {fid.hex}")
        current = await self.get(fid)
        given = {k: v for k, v in changes.items() if v is not None and v != ""}
        if not given:
            raise InvalidInput("nothing to change: give at least one control")
        fields: dict[str, Any] = {}
        for name in ("max_ecash_msat", "low_water_msat"):
            if name in given:
                fields[name] = _limit(given[name], name)
        for name in _SWITCHES:
            if name in given:
                fields[name] = Switch.ENABLED if _flag(given[name], name) else Switch.DISABLED
        if "drain" in given:
            fields["mode"] = FederationMode.DRAIN if _flag(given["drain"], "drain") else FederationMode.NORMAL
        updated = replace(current, **fields)
        if (
            updated.max_ecash_msat is not None
            and updated.low_water_msat is not None
            and updated.low_water_msat > updated.max_ecash_msat
        ):
            raise InvalidInput(
                f"low_water_msat ({updated.low_water_msat}) must not be above max_ecash_msat "
                f"({updated.max_ecash_msat})"
            )
        updated = replace(updated, federation_id=fid.hex, updated_at=self._clock.now())
        async with self._db.transaction() as conn:
            await repo.save(conn, updated)
        return {"federation_id": fid.hex, "controls": controls_json(updated)}


def _limit(raw: object, name: str) -> int | None:
    if isinstance(raw, str) and raw.strip().lower() in _UNSET:
        return None
    try:
        return Msat.parse(raw).value
    except ValueError as exc:
        raise InvalidInput(f"{name}: {exc}; or 'off' to remove the limit") from None


def _flag(raw: object, name: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return raw == 1
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _ON:
            return True
        if text in _OFF:
            return False
    raise InvalidInput(f"{name} must be true or false, got {raw!r}")
