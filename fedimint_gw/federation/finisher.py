"""Collecting an accepted operation's notes in the background, one task per operation.

A receive resolves its HTLC once its funding is accepted; the funding's change notes are
collected afterwards. Both adapter families (devfed's ledger, Fedimint's mint client) hand that
collection to a `BackgroundFinisher`: it calls the family's `finish(operation_id)` until it
returns (the finish itself returns at once for an operation no longer waiting for its notes),
pausing longer each time, and logs what keeps it waiting. The operation stays stored, so after
a restart the family's `resume` takes over; the notes are never lost, only late.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fedimint_gw.errors import FederationUnreachable, GatewayError

FINISH_PAUSE = 0.2  # first pause before asking for an accepted operation's notes again
FINISH_PAUSE_MAX = 5.0
LOUD_EVERY = 12  # other failures are logged on their 1st, 13th, 25th... occurrence

log = logging.getLogger("fedimint_gw.federation.finisher")


class BackgroundFinisher:
    """At most one background task per operation; none started once closed."""

    def __init__(self, finish: Callable[[str], Awaitable[None]]) -> None:
        self._finish = finish
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def start(self, operation_id: str) -> None:
        """Collect `operation_id`'s notes in the background (no-op if already under way)."""
        if self._closed or operation_id in self._tasks:
            return
        task = asyncio.create_task(self._keep_finishing(operation_id))
        self._tasks[operation_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(operation_id, None))

    def running(self, operation_id: str) -> bool:
        return operation_id in self._tasks

    async def _keep_finishing(self, operation_id: str) -> None:
        pause = FINISH_PAUSE
        seen: dict[str, int] = {}  # failures other than "too few shares yet", by kind
        while True:
            try:
                await self._finish(operation_id)
                return
            except FederationUnreachable as exc:  # too few signature shares yet: the notes wait
                log.info("notes of %s not collected yet: %s", operation_id, exc.message)
            except GatewayError as exc:  # a refusal the federation may take back: keep asking
                if _loud(seen, type(exc).__name__):
                    log.warning("notes of %s not collected (%s): asking again", operation_id, exc.message)
            except Exception as exc:  # a bug or a malformed answer: the notes stay reserved
                if _loud(seen, type(exc).__name__):
                    log.error("collecting the notes of %s failed unexpectedly: %r", operation_id, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, FINISH_PAUSE_MAX)

    async def close(self) -> None:
        """Stop: cancel the running tasks and start no new one (the operations stay stored)."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _loud(seen: dict[str, int], kind: str) -> bool:
    """Whether this failure is logged: the 1st, 13th, 25th... of its kind."""
    count = seen.get(kind, 0)
    seen[kind] = count + 1
    return count % LOUD_EVERY == 0
