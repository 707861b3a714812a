"""Developer-only commands: never needed by an operator, refused unless lightningd runs with
`--developer`."""

from __future__ import annotations

from typing import Any

from fedimint_gw.errors import InvalidInput
from fedimint_gw.lightning.node import LightningNode
from fedimint_gw.store.crash_points import CrashPoints, check_point
from fedimint_gw.store.db import Database


class DevTools:
    """`fedimint-dev-crash`: the crash matrix's injection (fedimint_gw/store/crash_points.py)."""

    def __init__(self, db: Database, node: LightningNode, log: Any) -> None:
        self._db = db
        self._node = node
        self._log = log
        self._crash: CrashPoints | None = None

    async def crash_at(self, point: object) -> dict[str, Any]:
        """Arm `point`: the plugin kills itself (SIGKILL) right after that step is committed."""
        try:
            checked = check_point(point)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if not await self._node.developer_mode():
            raise InvalidInput("fedimint-dev-crash is for tests only: lightningd must run with --developer")
        if self._crash is None:
            crash = CrashPoints(self._log)
            await self._db.enable_crash_points(crash)
            self._crash = crash
        self._crash.arm(checked)
        self._log(f"developer crash point armed: {checked}", "warn")
        return {"armed": checked}
