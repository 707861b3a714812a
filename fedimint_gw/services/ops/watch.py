"""Watches what changes without a payment: federation status and the operator's limits.

Every `INTERVAL` seconds (and whenever `check` is called) it probes each joined federation
and compares its status and its ecash against the low-water level and the cap with the last
round; each change is one event (`fedimint_federation_status`, `fedimint_limit_crossed`).
The first round only records the starting point, except for limits already crossed, which
are reported once so an operator learns of them after a restart too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fedimint_gw.services.events import FEDERATION_STATUS, LIMIT_CROSSED, GatewayEvents
from fedimint_gw.services.federations.manager import GuardianProbe
from fedimint_gw.services.ops.snapshot import FederationView, SnapshotReader

INTERVAL = 15.0


@dataclass(frozen=True)
class _Seen:
    status: str
    up: bool
    below_low_water: bool
    above_max: bool


def _seen(f: FederationView) -> _Seen:
    return _Seen(
        status=f.status,
        up=f.probe.reachable,
        below_low_water=f.low_water_msat is not None and f.ecash_msat < f.low_water_msat,
        above_max=f.max_ecash_msat is not None and f.ecash_msat > f.max_ecash_msat,
    )


class Watcher:
    """Emits status and limit events; `run` loops, `check` does one round."""

    def __init__(self, reader: SnapshotReader, events: GatewayEvents, log: Any) -> None:
        self._reader = reader
        self._events = events
        self._log = log
        self._last: dict[str, _Seen] = {}
        self._probes: dict[str, GuardianProbe] = {}
        self._round = asyncio.Lock()  # the loop's round and a command's round never interleave

    def last_probe(self, federation_id: str) -> GuardianProbe | None:
        """The guardian probe of the last round (None before the first round)."""
        return self._probes.get(federation_id)

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:  # a failed round must not end the watching
                self._log(f"status and limit watch: {exc!r}", "warn")
            await asyncio.sleep(INTERVAL)

    async def check(self) -> None:
        """One round: probe, compare with the last round, emit what changed."""
        async with self._round:
            await self._check()

    async def _check(self) -> None:
        current = {f.federation_id: f for f in await self._reader.federations()}
        for fid, f in current.items():
            now, before = _seen(f), self._last.get(fid)
            if before is not None and (before.status, before.up) != (now.status, now.up):
                self._events.emit(
                    FEDERATION_STATUS,
                    {
                        "federation_id": fid,
                        "name": f.name,
                        "status": now.status,
                        "up": now.up,
                        "previous_status": before.status,
                        "previous_up": before.up,
                        "guardians": f.probe.guardians,
                        "guardians_reachable": f.probe.answering,
                        "threshold": f.probe.threshold,
                    },
                )
            was_below = before.below_low_water if before else False
            was_above = before.above_max if before else False
            if now.below_low_water != was_below:
                self._limit(f, "low_water", f.low_water_msat, "below" if now.below_low_water else "above")
            if now.above_max != was_above:
                self._limit(f, "max_ecash", f.max_ecash_msat, "above" if now.above_max else "below")
            self._last[fid] = now
            self._probes[fid] = f.probe
        for gone in set(self._last) - set(current):
            del self._last[gone]
            self._probes.pop(gone, None)

    def _limit(self, f: FederationView, limit: str, level: int | None, side: str) -> None:
        self._events.emit(
            LIMIT_CROSSED,
            {
                "federation_id": f.federation_id,
                "name": f.name,
                "limit": limit,
                "level_msat": level,
                "ecash_msat": f.ecash_msat,
                "now": side,
            },
        )
