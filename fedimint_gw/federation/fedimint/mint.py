"""The gateway's mint client in one Fedimint federation: receive and spend out-of-band notes.

Every operation is stored (`FedimintNotes.prepare_*`) before anything is sent, then driven by
`run`: submit the stored transaction to every guardian, take the outcome a threshold agree on,
collect and check every guardian's signature share, store the notes. A crash or a network
failure anywhere leaves the operation `prepared`; `resume` (or the same call again) replays it
from the start, which is harmless: the same transaction gets the same outcome and the same
outputs (their secrets are derived from the operation id). Only a refusal agreed by a threshold
of guardians aborts an operation (money rule 2). A funding may return once accepted
(`notes_later`): its change notes are finished in the background, or by `resume` after a restart.
`resume` never submits a funding (its payment flow decides) and gives the notes of a volatile
spend back (nobody can ask for them again).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import FederationRejected, FederationUnreachable, InsufficientFunds
from fedimint_gw.federation.client import VOLATILE_PREFIX
from fedimint_gw.federation.fedimint.notes import SPEND, FedimintNotes, MintOperation, MintOpState
from fedimint_gw.federation.fedimint.release import RELEASE, RELEASE_SUFFIX, ReleaseOutcome, release_funding
from fedimint_gw.federation.finisher import BackgroundFinisher
from fedimint_gw.fedimint.encoding import Err
from fedimint_gw.fedimint.errors import FedimintProtocolError, ThresholdNotReached
from fedimint_gw.fedimint.mint_api import await_transaction, collect_notes, submit_transaction
from fedimint_gw.fedimint.mint_client import FinishedNote
from fedimint_gw.fedimint.mint_types import SpendableNote
from fedimint_gw.fedimint.oob import OOBNotes
from fedimint_gw.fedimint.query import FederationApi

log = logging.getLogger("fedimint_gw.fedimint.mint")


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
        self._finisher = BackgroundFinisher(self._finish_if_waiting)
        self._running: dict[str, int] = {}  # operations driven now in this process (resume skips)

    async def receive(self, oob: OOBNotes) -> ReceiveResult:
        """Reissue out-of-band notes into ours; what we hold afterwards is the notes' value less
        the federation's fees."""
        operation_id = receive_operation_id(oob)
        with self._driving(operation_id):
            op = await self.notes.prepare_receive(operation_id, oob)
            op = await self.run(op)
        return ReceiveResult(operation_id, Msat(int(op.result["received_msat"])))

    async def spend(self, operation_id: str, amount: Msat) -> SpendResult:
        """Fresh notes worth exactly `amount`, as OOBNotes text to hand out (fees come from our
        other notes)."""
        with self._driving(operation_id):
            op = await self.notes.prepare_spend(operation_id, amount)
            op = await self.run(op)
        return SpendResult(operation_id, Msat(int(op.result["amount_msat"])), str(op.result["oob"]))

    async def resume(self, fundings: tuple[str, ...] = (), others: tuple[str, ...] = ()) -> list[str]:
        """After a restart, end every operation of ours a crash cut short (the mint's `fm_*`
        kinds, plus `fundings` and `others`); the ids settled now. Never both ways, never twice:
        - a funding (kinds `fundings`) is only finished if a threshold already accepted it; one
          never accepted is left to its payment flow, which funds it while it holds the HTLC or
          makes it impossible (a release): submitting it here could pay its receiver for nothing;
        - a release is settled with its funding (by the flow), or dropped once that landed;
        - a volatile spend (nobody can retry it) gives its notes back: released while it never
          landed, else its handed-out notes are reissued to us;
        - any other operation (receives, retryable spends, claims, refunds, cancels) is driven
          again: the replay is harmless, and a threshold's refusal releases its inputs.
        Operations running in this process are left to their caller."""
        ops = await self.notes.unfinished()
        extra = tuple(k for k in (*fundings, *others) if not k.startswith("fm_"))  # not in the first list
        if extra:
            ops += await self.notes.unfinished(extra)
        settled = []
        for op in ops:
            if op.operation_id in self._running or self._finisher.running(op.operation_id):
                continue
            try:
                if await self._settle(op, fundings):
                    settled.append(op.operation_id)
            except (FederationUnreachable, FederationRejected, InsufficientFunds) as exc:
                log.info("mint operation %s not finished: %s", op.operation_id, exc)
        return settled

    async def _settle(self, op: MintOperation, fundings: tuple[str, ...]) -> bool:
        if op.kind == RELEASE:
            target = await self.notes.get(op.operation_id.removesuffix(RELEASE_SUFFIX))
            if target is not None and target.state is MintOpState.DONE:
                await self.notes.abort(op.operation_id, "the funding it conflicts with was accepted")
                return True
            return False  # settles with its funding, through the funding's flow
        if op.kind in fundings:
            if not await self._accepted_anyway(op):
                return False  # its payment flow decides: fund, or make it impossible
            try:
                await self._finish(op)
            except FederationUnreachable:
                self._finisher.start(op.operation_id)
                raise
            return True
        if op.kind == SPEND and op.operation_id.startswith(VOLATILE_PREFIX):
            return await self._reclaim(op)
        await self.run(op)
        return True

    async def _reclaim(self, op: MintOperation) -> bool:
        """A volatile spend a crash cut short: nobody holds its notes, so they come back. If it
        never landed its inputs are spent back to us (a release); if it landed, the notes it
        made are reissued to us (the reissue stored before the spend is marked done)."""
        outcome = await release_funding(self.notes, self._api, op, self._accept_check_timeout)
        if outcome is ReleaseOutcome.RELEASED:
            return True
        if outcome is ReleaseOutcome.UNKNOWN:
            return False
        finished = await self._collect(op)
        oob = self._handed_out(op, finished)
        result: dict[str, object] = {"amount_msat": oob.total_msat, "oob": oob.encode()}
        reissue = await self.notes.prepare_receive(receive_operation_id(oob), oob)
        await self.notes.complete(op.operation_id, finished, {**result, "reclaimed": reissue.operation_id})
        await self.notes.abort(op.operation_id + RELEASE_SUFFIX, "the spend it conflicts with was accepted")
        await self.run(reissue)
        return True

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
        with self._driving(op.operation_id):
            return await self._run(op, notes_later)

    @contextlib.contextmanager
    def _driving(self, operation_id: str) -> Iterator[None]:
        """Mark an operation as driven by a caller in this process (`resume` leaves it alone)."""
        self._running[operation_id] = self._running.get(operation_id, 0) + 1
        try:
            yield
        finally:
            left = self._running.pop(operation_id) - 1
            if left:
                self._running[operation_id] = left

    async def _run(self, op: MintOperation, notes_later: bool) -> MintOperation:
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
            self._finisher.start(op.operation_id)
            return op
        return await self._finish(op)

    async def _finish_if_waiting(self, operation_id: str) -> None:
        """The background finisher's step: collect the notes of an accepted operation still
        waiting for them (FederationUnreachable while too few guardians signed)."""
        op = await self.notes.get(operation_id)
        if op is not None and op.state is MintOpState.PREPARED:
            await self._finish(op)

    async def close(self) -> None:
        """Stop collecting notes in the background (the operations stay stored: `resume`)."""
        await self._finisher.close()

    async def _collect(self, op: MintOperation) -> list[FinishedNote]:
        """Collect and check the signature shares of an accepted operation's outputs."""
        try:
            return await collect_notes(
                self._api, self.notes.mint_instance_id, self.notes.config, op.tx.txid(), op.outputs
            )
        except FedimintProtocolError as exc:
            raise FederationUnreachable(f"notes of {op.operation_id} not issued yet: {exc.message}") from None

    def _handed_out(self, op: MintOperation, finished: list[FinishedNote]) -> OOBNotes:
        """The notes a spend hands out (its first `send_count` outputs), as OOBNotes."""
        by_tier: dict[int, list[SpendableNote]] = {}
        for note in finished[: op.send_count]:
            by_tier.setdefault(note.amount, []).append(note.note)
        return OOBNotes.new(
            self.notes.federation_id, {a: tuple(n) for a, n in sorted(by_tier.items())}, self._peer_apis
        )

    async def _finish(self, op: MintOperation) -> MintOperation:
        """Collect the notes of an accepted operation; store them."""
        finished = await self._collect(op)
        if op.kind == SPEND:
            oob = self._handed_out(op, finished)
            result: dict[str, object] = {
                "amount_msat": sum(n.amount for n in finished[: op.send_count]),
                "oob": oob.encode(),
            }
        else:
            result = {"received_msat": sum(n.amount for n in finished)}
        await self.notes.complete(op.operation_id, finished, result)
        done = await self.notes.get(op.operation_id)
        if done is None:  # pragma: no cover - complete() just wrote it
            raise FederationUnreachable(f"mint operation {op.operation_id} vanished")
        return done
