"""Developer-only crash injection: kill the plugin right after a chosen step is committed.

The crash matrix (tests/regtest/test_crash_matrix*.py) needs the plugin to die with `kill -9`
at each persisted step of every flow, exactly after the step's row is committed and before
the side effect that follows it. Every step of every flow is a row written to one of three
tables, so the injection lives here, below every flow, instead of in each of them:

- `payments`: a payment's kind and state, and its data's `step` where it has one
  (`receive:htlc_held`, `send:paying`, `swap:funded`, `peer:claiming`, `migrate:htlc_held:offer`);
- `peer_settlements`: `settlement:<role>:<state>` (`settlement:debtor:paying`);
- `ecash_operations`: `ecash:<kind>:<state>` (`ecash:fm_fund:prepared`).

A point is armed with `lightning-cli fedimint-dev-crash point=...` (refused unless lightningd runs
with `--developer`). It fires once, at the first commit that wrote a row matching it: the
plugin process sends itself SIGKILL, which is what `kill -9` does. Nothing of this is
persisted; a restarted plugin has no point armed. Temporary SQLite triggers call back into
Python from inside the write; the kill waits for the commit.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from typing import Any

import aiosqlite

_POINT = re.compile(r"^(receive|send|swap|peer|migrate|settlement|ecash)(:[a-z0-9_]+){1,2}\Z")

# One temporary trigger per table and write kind; each calls fgw_step(point parts...).
_TRIGGERS = (
    (
        "payments",
        "'payments', NEW.kind, NEW.state, json_extract(NEW.data_json, '$.step')",
        "OLD.state IS NOT NEW.state "
        "OR json_extract(OLD.data_json, '$.step') IS NOT json_extract(NEW.data_json, '$.step')",
    ),
    ("peer_settlements", "'settlement', NEW.role, NEW.state, NULL", "OLD.state IS NOT NEW.state"),
    ("ecash_operations", "'ecash', NEW.kind, NEW.state, NULL", "OLD.state IS NOT NEW.state"),
)


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def check_point(point: str) -> str:
    """`point` if it names a step (see the module docstring), else ValueError."""
    if not isinstance(point, str) or not _POINT.match(point):
        raise ValueError(
            f"crash point {point!r} must look like receive:funded, send:paying, "
            "migrate:htlc_held:offer, settlement:debtor:paying or ecash:<kind>:<state>"
        )
    return point


class CrashPoints:
    """The armed point, the triggers that watch writes, and the kill after the commit."""

    def __init__(self, log: Callable[[str, str], None], die: Callable[[], None] = _kill_self) -> None:
        self._log = log
        self._die = die
        self._armed: str | None = None
        self._reached: str | None = None

    @property
    def armed(self) -> str | None:
        return self._armed

    async def install(self, conn: aiosqlite.Connection) -> None:
        """Register the callback and the temporary triggers on this connection (not persisted)."""
        await conn.create_function("fgw_step", 4, self._on_write)
        for table, args, changed in _TRIGGERS:
            await conn.execute(
                f"CREATE TEMP TRIGGER IF NOT EXISTS fgw_crash_{table}_ins AFTER INSERT ON main.{table} "
                f"BEGIN SELECT fgw_step({args}); END"
            )
            await conn.execute(
                f"CREATE TEMP TRIGGER IF NOT EXISTS fgw_crash_{table}_upd AFTER UPDATE ON main.{table} "
                f"WHEN {changed} BEGIN SELECT fgw_step({args}); END"
            )

    def arm(self, point: str) -> None:
        """Kill the plugin at the next commit that writes a row matching `point`."""
        self._armed = check_point(point)
        self._reached = None

    def _on_write(self, source: Any, kind: Any, state: Any, step: Any) -> int:
        # Runs in aiosqlite's thread inside the write; only notes the match.
        if self._armed is None:
            return 0
        prefix = source if source in ("settlement", "ecash") else str(kind)
        if source in ("settlement", "ecash"):
            names = {f"{prefix}:{kind}:{state}"}
        else:
            names = {f"{prefix}:{state}"}
            if step is not None:
                names.add(f"{prefix}:{state}:{step}")
        if self._armed in names:
            self._reached = self._armed
        return 0

    def after_commit(self) -> None:
        """Called by the database after each commit: die if the armed step was just written."""
        reached, self._reached = self._reached, None
        if reached is not None and reached == self._armed:
            self._armed = None
            self._log(f"developer crash point {reached} reached: the plugin kills itself (SIGKILL)", "warn")
            self._die()

    def after_rollback(self) -> None:
        """A rolled-back write never happened: forget a match it made."""
        self._reached = None
