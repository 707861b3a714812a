"""Background runs of payment flows: one task per payment id, a lock per key, and tombstones.

Flows that a message or a command starts but that may outlast it (inbound peer forwards,
exchanges, migrations) run as tasks keyed by payment id. A caller waits for a run up to a
deadline and then answers with the newest stored record; a run cut short by a crash is started
again at resume.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import FederationUnreachable, GatewayError, NotReady
from fedimint_gw.store import payments as pay_repo
from fedimint_gw.store.db import Database

Runner = Callable[[pay_repo.PaymentRecord], Coroutine[Any, Any, pay_repo.PaymentRecord]]
Step = Callable[[pay_repo.PaymentRecord, int], Coroutine[Any, Any, pay_repo.PaymentRecord]]
RETRY_PAUSE = 2.0
TOMBSTONE_ERROR = "cancelled by the sender before it arrived"


class FlowRuns:
    """The running flows of one service."""

    def __init__(self, db: Database, run: Runner) -> None:
        self._db = db
        self._run = run
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: dict[str, asyncio.Task[pay_repo.PaymentRecord]] = {}

    def lock(self, key: str) -> asyncio.Lock:
        """The lock serialising the messages about one id."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def running(self, payment_id: str) -> bool:
        return payment_id in self._tasks

    def start(self, rec: pay_repo.PaymentRecord) -> asyncio.Task[pay_repo.PaymentRecord]:
        """Run `rec`'s flow in the background (the run already going, if there is one)."""
        task = self._tasks.get(rec.payment_id)
        if task is None:
            task = asyncio.create_task(self._run(rec))
            self._tasks[rec.payment_id] = task
            task.add_done_callback(lambda _t: self._tasks.pop(rec.payment_id, None))
        return task

    async def settle(self, rec: pay_repo.PaymentRecord, wait: float) -> pay_repo.PaymentRecord:
        """Make sure an unfinished flow runs, wait for it up to `wait` seconds, and return
        the newest record (the run's result, else what is stored)."""
        if rec.state.terminal and not self.running(rec.payment_id):
            return rec
        task = self.start(rec)
        if wait > 0:
            await asyncio.wait({task}, timeout=wait)
        if task.done() and not task.cancelled() and task.exception() is None:
            return task.result()
        return await pay_repo.get(self._db.conn, rec.payment_id) or rec

    async def status(
        self, payment_id: str, cancel_unknown: object, kind: PaymentKind, now: int, data: dict[str, Any]
    ) -> pay_repo.PaymentRecord | None:
        """Answering a sender's status question: the record of `payment_id`; for an id never
        seen, a tombstone when the sender cancels it (`cancel_unknown` true), else None."""
        async with self.lock(payment_id):
            rec = await pay_repo.get(self._db.conn, payment_id)
            if rec is None and cancel_unknown is True:
                rec = await tombstone(self._db, now, payment_id, kind, data)
        return rec

    async def resume(self, mine: Callable[[pay_repo.PaymentRecord], bool]) -> None:
        """At start: run again every unfinished flow of this service."""
        for rec in await pay_repo.unfinished(self._db.conn):
            if mine(rec) and not self.running(rec.payment_id):
                self.start(rec)

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()


async def tombstone(
    db: Database, now: int, payment_id: str, kind: PaymentKind, data: dict[str, Any]
) -> pay_repo.PaymentRecord:
    """Record that the sender cancelled an id we never saw, so that it can never start later."""
    rec = pay_repo.PaymentRecord(
        payment_id=payment_id,
        kind=kind,
        state=PaymentState.FAILED,
        payment_hash="",
        amount_msat=0,
        created_at=now,
        updated_at=now,
        error=TOMBSTONE_ERROR,
        data={**data, "outcome": "cancelled"},
    )
    async with db.transaction() as conn:
        await pay_repo.save(conn, rec)
    return rec


async def run_steps(
    rec: pay_repo.PaymentRecord, step: Step, label: str, log: Callable[[str, str], None]
) -> pay_repo.PaymentRecord:
    """Call `step` until `rec` is terminal. A federation that does not answer, or ecash held by
    other flows, is waited out; anything else unexpected is logged and retried later (the record
    stays as it is). `step` gets how many waits there were so far."""
    waits = 0
    while not rec.state.terminal:
        try:
            rec = await step(rec, waits)
        except (FederationUnreachable, NotReady) as exc:
            waits += 1
            log(f"{label}: waiting ({exc.message})", "info")
            await asyncio.sleep(RETRY_PAUSE)
        except GatewayError as exc:
            log(f"{label}: {exc.message}; retrying", "error")
            await asyncio.sleep(RETRY_PAUSE * 5)
    return rec
