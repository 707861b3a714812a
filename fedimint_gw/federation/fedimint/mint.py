"""The gateway's mint client in one Fedimint federation: receive and spend out-of-band notes.

Every operation is stored (`FedimintNotes.prepare_*`) before anything is sent, then driven by
`run`: submit the stored transaction to every guardian, take the outcome a threshold agree on,
collect and check every guardian's signature share, store the notes. A crash or a network
failure anywhere leaves the operation `prepared`; `resume` (or the same call again) replays it
from the start, which is harmless: the same transaction gets the same outcome and the same
outputs (their secrets are derived from the operation id). Only a refusal agreed by a threshold
of guardians aborts an operation (money rule 2). A funding may return once accepted
(`notes_later`): its change notes are finished in the background, or by `resume` after a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import FederationRejected, FederationUnreachable
from fedimint_gw.federation.fedimint.notes import SPEND, FedimintNotes, MintOperation, MintOpState
from fedimint_gw.fedimint.encoding import Err
from fedimint_gw.fedimint.errors import FedimintProtocolError, ThresholdNotReached
from fedimint_gw.fedimint.mint_api import await_transaction, collect_notes, submit_transaction
from fedimint_gw.fedimint.mint_types import SpendableNote
from fedimint_gw.fedimint.oob import OOBNotes
from fedimint_gw.fedimint.query import FederationApi

log = logging.getLogger("fedimint_gw.fedimint.mint")
FINISH_PAUSE = 0.2  # first pause before asking for an accepted operation's notes again
FINISH_PAUSE_MAX = 5.0


@dataclass(frozen=True)
class ReceiveResult:
    operation_id: str
    received: Msat


@dataclass(frozen=True)
class SpendResult:
    operation_id: str
    amount: Msat
    oob: str


def receive_operation_id(oob: OOBNotes) -> str:
    """The operation id of receiving these notes: receiving the same notes twice is one operation."""
    return "fm-receive-" + hashlib.sha256(oob.to_bytes()).hexdigest()


class MintClient:
    """Receives and spends notes of one federation through its guardians."""

    def __init__(
        self,
        notes: FedimintNotes,
        api: FederationApi,
        peer_apis: tuple[tuple[int, str], ...],
        *,
        accept_check_timeout: float = 5.0,
    ) -> None:
        self.notes = notes
        self._api = api
        self._peer_apis = peer_apis
        self._accept_check_timeout = accept_check_timeout
        self._finishing: dict[str, asyncio.Task[None]] = {}

    async def receive(self, oob: OOBNotes) -> ReceiveResult:
        """Reissue out-of-band notes into ours; what we hold afterwards is the notes' value less
        the federation's fees."""
        operation_id = receive_operation_id(oob)
        op = await self.notes.prepare_receive(operation_id, oob)
        op = await self.run(op)
        return ReceiveResult(operation_id, Msat(int(op.result["received_msat"])))

    async def spend(self, operation_id: str, amount: Msat) -> SpendResult:
        """Fresh notes worth exactly `amount`, as OOBNotes text to hand out (fees come from our
        other notes)."""
        op = await self.notes.prepare_spend(operation_id, amount)
        op = await self.run(op)
        return SpendResult(operation_id, Msat(int(op.result["amount_msat"])), str(op.result["oob"]))

    async def resume(self) -> list[str]:
        """Drive every unfinished operation again; the ids of those that finished now."""
        finished = []
        for op in await self.notes.unfinished():
            try:
                await self.run(op)
                finished.append(op.operation_id)
            except (FederationUnreachable, FederationRejected) as exc:
                log.info("mint operation %s not finished: %s", op.operation_id, exc)
        return finished

    async def finish_accepted(self, kinds: tuple[str, ...]) -> list[str]:
        """After a restart: finish the notes of the unfinished operations of `kinds` that a
        threshold accepted, without submitting anything (a funding not accepted is left to its
        payment flow, which decides whether it is ever submitted). The ids finished now; the
        others are collected in the background until enough guardians sign."""
        finished = []
        for op in await self.notes.unfinished(kinds):
            try:
                if not await self._accepted_anyway(op):
                    continue
                await self._finish(op)
                finished.append(op.operation_id)
            except FederationUnreachable as exc:
                log.info("mint operation %s not finished: %s", op.operation_id, exc.message)
                self._finish_later(op.operation_id)
        return finished

    async def _accepted_anyway(self, op: MintOperation) -> bool:
        """A refusal of a transaction we may have submitted before (a replay after a crash) can
        mean its inputs are spent by that very transaction: ask whether a threshold of guardians
        has it accepted before releasing anything. Unreachable guardians are a doubt, not a no."""
        try:
            await await_transaction(self._api, op.tx.txid(), timeout=self._accept_check_timeout)
        except ThresholdNotReached:
            return False
        except FedimintProtocolError as exc:
            raise FederationUnreachable(
                f"cannot tell whether {op.operation_id} went through: {exc.message}"
            ) from None
        return True

    async def run(self, op: MintOperation, *, notes_later: bool = False) -> MintOperation:
        """Submit, await, collect shares, store: the replayable steps of one operation. With
        `notes_later`, return (the operation still prepared) once a threshold accepted the
        transaction, and collect the shares in the background."""
        if op.state is MintOpState.DONE:
            return op
        if op.state is MintOpState.FAILED:
            raise FederationRejected(f"mint operation {op.operation_id} failed: {op.result.get('error')}")
        try:
            outcome = await submit_transaction(self._api, op.tx)
        except FedimintProtocolError as exc:
            raise FederationUnreachable(
                f"transaction of {op.operation_id} not confirmed: {exc.message}"
            ) from None
        if isinstance(outcome.result, Err) and not await self._accepted_anyway(op):
            reason = outcome.result.error.describe()
            await self.notes.abort(op.operation_id, reason)
            raise FederationRejected(f"the federation refused the transaction: {reason}")
        if notes_later and op.outputs:
            self._finish_later(op.operation_id)
            return op
        return await self._finish(op)

    def _finish_later(self, operation_id: str) -> None:
        if operation_id in self._finishing:
            return
        task = asyncio.create_task(self._keep_finishing(operation_id))
        self._finishing[operation_id] = task
        task.add_done_callback(lambda _t: self._finishing.pop(operation_id, None))

    async def _keep_finishing(self, operation_id: str) -> None:
        """Collect an accepted operation's notes until a threshold signed them (pausing longer
        each time). Cancelled by `close`; `resume` drives the operation after a restart."""
        pause = FINISH_PAUSE
        while True:
            op = await self.notes.get(operation_id)
            if op is None or op.state is not MintOpState.PREPARED:
                return
            try:
                await self._finish(op)
                return
            except FederationUnreachable as exc:
                log.info("notes of %s not finished yet: %s", operation_id, exc.message)
            await asyncio.sleep(pause)
            pause = min(pause * 2, FINISH_PAUSE_MAX)

    async def close(self) -> None:
        """Stop collecting notes in the background (the operations stay stored: `resume`)."""
        tasks = list(self._finishing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _finish(self, op: MintOperation) -> MintOperation:
        """Collect and check the signature shares of an accepted operation; store its notes."""
        try:
            finished = await collect_notes(
                self._api, self.notes.mint_instance_id, self.notes.config, op.tx.txid(), op.outputs
            )
        except FedimintProtocolError as exc:
            raise FederationUnreachable(f"notes of {op.operation_id} not issued yet: {exc.message}") from None
        if op.kind == SPEND:
            send = finished[: op.send_count]
            by_tier: dict[int, list[SpendableNote]] = {}
            for note in send:
                by_tier.setdefault(note.amount, []).append(note.note)
            oob = OOBNotes.new(
                self.notes.federation_id, {a: tuple(n) for a, n in sorted(by_tier.items())}, self._peer_apis
            )
            result: dict[str, object] = {"amount_msat": sum(n.amount for n in send), "oob": oob.encode()}
        else:
            result = {"received_msat": sum(n.amount for n in finished)}
        await self.notes.complete(op.operation_id, finished, result)
        done = await self.notes.get(op.operation_id)
        if done is None:  # pragma: no cover - complete() just wrote it
            raise FederationUnreachable(f"mint operation {op.operation_id} vanished")
        return done
