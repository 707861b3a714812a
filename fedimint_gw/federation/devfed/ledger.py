"""Private: the gateway's ecash operations in one devfed federation, shared by v1 and v2.

Every transaction goes through `NoteWallet` in three persisted steps: `prepare` (reserve
inputs, store change outputs with blinding factors and the signed transaction), submit the
stored transaction to every guardian, then collect every guardian's signature shares and
`complete` (or `abort` once a threshold of guardians refused it). Reads that decide money
(contracts, block height, transaction status) need a threshold of agreeing guardians
(`quorum.py`); an unknown outcome is never taken as a refusal: `abandon_funding` makes a
funding impossible with a conflicting transaction (`unfund:<op>`) before anyone is refunded.
Operation ids are deterministic
(`fund:<op>`, `claim:<contract>`, `refund:<contract>`, `spend:<op>`, `reissue:<hash>`), so a
retry after a crash or timeout resubmits the identical transaction; devfed answers an
accepted transaction's replay identically, and the outputs are finished then.

A funding (`fund`) returns as soon as a threshold accepted it: its contract is funded, and the
receive may take the preimage from any guardian at once. Its change notes are finished in the
background (`note_accepted` stores the acceptance first, so `resume` finishes them after a crash);
until then its inputs stay reserved and the change is not in the balance.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.threshold_bdhke import BlindSignatureShare, verify_share
from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import (
    FederationRejected,
    FederationUnreachable,
    GatewayError,
    InvalidInput,
    NotFound,
)
from fedimint_gw.federation.client import (
    VOLATILE_PREFIX,
    OutgoingContract,
    OutgoingState,
)
from fedimint_gw.federation.devfed.guardians import (
    FederationKeys,
    GuardianApi,
    Guardians,
    Json,
    object_id,
    pubkey_of,
    sign,
    txid_of,
)
from fedimint_gw.federation.devfed.notes_format import (
    derived_outputs,
    double_spent,
    reissue_inputs,
    spent_elsewhere,
)
from fedimint_gw.federation.devfed.reads import Reads
from fedimint_gw.federation.ecash import Note, PendingOutput, finish_outputs
from fedimint_gw.federation.finisher import BackgroundFinisher
from fedimint_gw.federation.notes import NoteWallet, Operation, OperationState, TxBuilder

_ZERO = Msat(0)


def _kept(op: Operation) -> Msat:
    """What an operation that spends no gateway notes (claim, refund, reissue) gained."""
    return Msat(sum(o.amount_msat for o in op.outputs))


class Ledger:
    """The gateway's ecash, contracts reads and operations in one federation."""

    def __init__(
        self,
        federation_id: str,
        keys: FederationKeys,
        guardians: Guardians,
        api: GuardianApi,
        wallet: NoteWallet,
        secret: bytes,
    ) -> None:
        self.federation_id = federation_id
        self.keys = keys
        self.guardians = guardians
        self.api = api
        self.wallet = wallet
        self.secret = secret
        self.gateway_pubkey = pubkey_of(secret)
        self.misbehaving: set[int] = set()  # peer ids whose answers failed verification
        self.reads = Reads(guardians, api, self.misbehaving)
        # One lock per operation in flight (entries vanish when no caller holds them).
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # Accepted fundings whose change notes are being finished in the background.
        self._finisher = BackgroundFinisher(self.finish_accepted)

    # ---- reads: on a threshold of agreeing guardians (reads.py) --------------------------
    async def contract(self, contract_id: str, preimage_ok: bool = False) -> Json:
        """The contract view a threshold of guardians agree on (see `Reads.contract`)."""
        return await self.reads.contract(contract_id, preimage_ok)

    async def block_height(self) -> int:
        """The block height a threshold of guardians agree on."""
        return await self.reads.block_height()

    async def verify_outgoing(self, contract_id: str) -> OutgoingContract:
        """An outgoing contract as a threshold of guardians show it."""
        return await self.reads.verify_outgoing(contract_id, self.gateway_pubkey)

    def builder(self, contract_inputs: Sequence[Json], fixed_outputs: Sequence[Json]) -> TxBuilder:
        """A transaction builder: contract inputs (signed with the gateway key) + the chosen
        notes as inputs; fixed outputs + the change outputs."""

        def build(chosen: Sequence[Note], change: Sequence[PendingOutput]) -> dict[str, Any]:
            inputs = [*contract_inputs, *(n.to_input() for n in chosen)]
            outputs = [*fixed_outputs, *(o.to_output() for o in change)]
            txid = object_id({"inputs": inputs, "outputs": outputs})
            signatures = [
                sign(self.secret, "input", {"txid": txid, "input_index": i})
                if i < len(contract_inputs)
                else None
                for i in range(len(inputs))
            ]
            return {"inputs": inputs, "outputs": outputs, "signatures": signatures}

        return build

    async def run(
        self,
        operation_id: str,
        kind: str,
        build: TxBuilder,
        *,
        spend: Msat = _ZERO,
        receive: Msat = _ZERO,
        fixed_outputs: Sequence[Json] = (),
        given: Sequence[PendingOutput] = (),
        notes_later: bool = False,
    ) -> tuple[Operation, dict[str, Any]]:
        """Prepare (or find) the operation, submit its stored transaction, finish its notes.

        `given` are note outputs (among `fixed_outputs`) handed out rather than kept; their
        notes are returned in the result as `given`. With `notes_later`, return once a threshold
        accepted the transaction and finish the notes in the background. Returns the operation
        and its result. Concurrent calls with one operation id run one after the other.
        """
        lock = self._locks.setdefault(operation_id, asyncio.Lock())
        async with lock:
            return await self._run(
                operation_id, kind, build, spend, receive, fixed_outputs, given, notes_later
            )

    async def _run(
        self,
        operation_id: str,
        kind: str,
        build: TxBuilder,
        spend: Msat,
        receive: Msat,
        fixed_outputs: Sequence[Json],
        given: Sequence[PendingOutput],
        notes_later: bool,
    ) -> tuple[Operation, dict[str, Any]]:
        op = await self.wallet.prepare(operation_id, kind, spend, self.keys.tx_fee, receive, build)
        if any(o not in op.tx["outputs"] for o in fixed_outputs):
            raise InvalidInput(f"operation id {operation_id!r} was already used for another transaction")
        if op.state is OperationState.DONE:
            return op, op.result
        if op.state is OperationState.FAILED:
            raise FederationRejected(
                f"{kind}: the federation refused this operation: {op.result.get('error')}"
            )
        if op.result.get("superseded_by"):  # being abandoned: never resubmitted
            if await self._abandon(op, given):
                raise FederationRejected(f"{kind}: abandoned: a conflicting transaction spent its inputs")
            done = await self.wallet.get(operation_id)
            return (done or op), (done or op).result
        if op.result.get("accepted"):  # a threshold accepted it already: only its notes are left
            if notes_later:
                self._finisher.start(operation_id)
                return op, op.result
            return op, await self._finished(op, op.result, given)
        txid = txid_of(op.tx)
        try:
            answer = await self.reads.submit(op.tx, f"{kind} transaction {txid[:16]}")
        except (FederationRejected, NotFound) as exc:
            await self.wallet.abort(operation_id, exc.message, double_spent(op.tx, exc.message))
            raise
        if notes_later and op.outputs and not given:
            result = {"accepted": True, "txid": txid, "height": answer.get("height")}
            await self.wallet.note_accepted(operation_id, result)
            self._finisher.start(operation_id)
            return op, result
        return op, await self._finished(op, answer, given)

    async def finish_accepted(self, operation_id: str) -> None:
        """Finish the notes of an operation a threshold accepted (`note_accepted`); nothing
        is submitted again. Raises FederationUnreachable while too few guardians sign."""
        lock = self._locks.setdefault(operation_id, asyncio.Lock())
        async with lock:
            op = await self.wallet.get(operation_id)
            if op is None or op.state is not OperationState.PREPARED or not op.result.get("accepted"):
                return
            await self._finished(op, op.result)

    async def close(self) -> None:
        """Stop finishing notes in the background (their operations stay stored: `resume`)."""
        await self._finisher.close()

    async def _finished(
        self, op: Operation, answer: Json, given: Sequence[PendingOutput] = ()
    ) -> dict[str, Any]:
        """Finish an accepted operation's notes and store them (idempotent)."""
        txid = txid_of(op.tx)
        outputs = [*given, *op.outputs]
        notes = await self.finish(txid, op.tx, outputs) if outputs else []
        result: dict[str, Any] = {"txid": txid, "height": answer.get("height")}
        if given:
            result["given"] = [n.to_input() for n in notes[: len(given)]]
        await self.wallet.complete(op.operation_id, notes[len(given) :], result)
        return result

    async def finish(self, txid: str, tx: Mapping[str, Any], outputs: Sequence[PendingOutput]) -> list[Note]:
        """Collect every guardian's signature shares for `outputs`, verify, combine t, unblind."""
        positions = {o.get("B_"): j for j, o in enumerate(tx["outputs"]) if o.get("kind") == "note"}
        found = [positions.get(o.blinded.to_hex()) for o in outputs]
        indices = [j for j in found if j is not None]
        if len(indices) != len(outputs):
            raise InvalidInput(f"the stored transaction {txid} lacks some of its note outputs")

        def enough(answers: Mapping[int, dict[int, object]]) -> list[Note]:
            by_guardian = {i: [a.get(j) for j in indices] for i, a in answers.items()}
            try:
                notes, bad = finish_outputs(outputs, by_guardian, self.keys.mint)
            except FederationUnreachable:
                bad = [i for i, shares in by_guardian.items() if not self._valid_shares(i, outputs, shares)]
                self.misbehaving.update(i - 1 for i in bad)
                raise
            self.misbehaving.update(i - 1 for i in bad)
            return notes

        return await self.guardians.collect(
            lambda g: self.api.signature_shares(g.url, txid), enough, f"signature shares of {txid[:16]}"
        )

    def _valid_shares(self, index: int, outputs: Sequence[PendingOutput], shares: Sequence[object]) -> bool:
        """Whether guardian `index` gave a verified share for every output."""
        try:
            parsed = [BlindSignatureShare.from_dict(s) for s in shares]
        except CryptoError:
            return False
        return len(parsed) == len(outputs) and all(
            p.index == index and verify_share(self.keys.mint.shares[o.amount_msat][index], o.blinded, p)
            for p, o in zip(parsed, outputs, strict=False)
        )

    async def fund(self, operation_id: str, output: Json) -> str:
        """Buy a contract output with gateway notes; returns the contract id as soon as a
        threshold accepted the funding (the change notes are finished afterwards)."""
        amount = Msat(int(output["amount_msat"]))
        build = self.builder([], [output])
        await self.run(
            f"fund:{operation_id}",
            "fund_incoming",
            build,
            spend=amount,
            fixed_outputs=[output],
            notes_later=True,
        )
        return object_id(output)

    async def abandon_funding(self, operation_id: str) -> bool:
        """Give up a funding whose outcome is unknown: True once it certainly never happens (a
        conflicting transaction spending its notes was accepted), False if the federation
        accepted it. Raises FederationUnreachable while neither is settled."""
        op_id = f"fund:{operation_id}"
        lock = self._locks.setdefault(op_id, asyncio.Lock())
        async with lock:
            op = await self.wallet.get(op_id)
            if op is None or op.state is OperationState.FAILED:
                return True
            if op.state is OperationState.DONE or op.result.get("accepted"):
                return False
            return await self._abandon(op)

    async def _abandon(
        self, op: Operation, given: Sequence[PendingOutput] = (), reclaim: bool = False
    ) -> bool:
        """Make `op` impossible: reissue the notes it reserved to the gateway in a conflicting
        transaction. Accepted by a threshold: `op` can never land (True). Refused as a
        double spend: `op` landed first; it is finished (False), and with `reclaim` the notes
        it gave out are stored for reissuing back first. Caller holds op's lock."""
        conflict_id = f"unfund:{op.operation_id}"
        conflict = await self.wallet.prepare_conflict(
            conflict_id, op.operation_id, "abandon_funding", self.keys.tx_fee, self.builder([], [])
        )
        txid = txid_of(conflict.tx)
        try:
            await self.reads.submit(conflict.tx, f"conflicting reissue {txid[:16]}")
        except (FederationRejected, NotFound) as exc:
            if "double_spend" not in exc.message:
                raise FederationUnreachable(
                    f"cannot make operation {op.operation_id} impossible ({exc.message}); its outcome "
                    "stays unknown"
                ) from None
            fund_txid = txid_of(op.tx)
            if spent_elsewhere(exc.message, {fund_txid, txid}):
                # One of its notes was spent by another accepted transaction: `op` can never land.
                await self.wallet.abort(op.operation_id, exc.message, double_spent(conflict.tx, exc.message))
                await self.wallet.abort(conflict_id, "not needed: the operation can never be accepted")
                return True
            try:
                answer = await self.reads.transaction(fund_txid)
            except NotFound:  # its notes are spent, by it or not: unknown until a threshold knows
                raise FederationUnreachable(
                    f"the notes of operation {op.operation_id} are spent, but no threshold of guardians "
                    "knows its transaction yet"
                ) from None
            if reclaim and given:
                await self._reclaim_landed(op, answer, given)
            else:
                await self._finished(op, answer, given)
            await self.wallet.abort(conflict_id, "the operation it conflicts with was accepted first")
            return False
        notes = await self.finish(txid, conflict.tx, conflict.outputs) if conflict.outputs else []
        await self.wallet.complete_conflict(conflict_id, op.operation_id, notes, {"txid": txid})
        return True

    async def _reclaim(self, operation_id: str, given: Sequence[PendingOutput]) -> None:
        """A volatile spend a crash cut short: nobody can ever hold its notes, so they come back
        to the gateway (the spend is made impossible, or its notes are reissued back)."""
        lock = self._locks.setdefault(operation_id, asyncio.Lock())
        async with lock:
            op = await self.wallet.get(operation_id)
            if op is None or op.state is not OperationState.PREPARED or await self._abandon(op, given, True):
                return
        done = await self.wallet.get(operation_id)
        reissue_id = str(done.result.get("reclaimed") or "") if done is not None else ""
        if reissue_id:
            await self.run(reissue_id, "receive_ecash", self.builder([], []))

    async def _reclaim_landed(self, op: Operation, answer: Json, given: Sequence[PendingOutput]) -> None:
        """Finish a landed volatile spend, storing the reissue of its notes before the spend is
        marked done (so a crash in between still brings them back)."""
        txid = txid_of(op.tx)
        notes = await self.finish(txid, op.tx, [*given, *op.outputs])
        result: dict[str, Any] = {"txid": txid, "height": answer.get("height")}
        result["given"] = [n.to_input() for n in notes[: len(given)]]
        reissue_id, build, total = self.reissue_plan(notes[: len(given)])
        if total > self.keys.tx_fee:  # dust below one fee stays where it is
            await self.wallet.prepare(reissue_id, "receive_ecash", _ZERO, self.keys.tx_fee, total, build)
            result["reclaimed"] = reissue_id
        await self.wallet.complete(op.operation_id, notes[len(given) :], result)

    async def spend_contract(self, kind: str, contract_input: Json, amount: Msat, operation_id: str) -> Msat:
        """Spend a contract (claim or refund) into gateway notes; returns the msat gained."""
        existing = await self.wallet.get(operation_id)
        if existing is None and amount <= self.keys.tx_fee:
            raise InvalidInput(f"the contract's {amount} cannot pay the {self.keys.tx_fee} transaction fee")
        op, _ = await self.run(operation_id, kind, self.builder([contract_input], []), receive=amount)
        return _kept(op)

    async def claim_outgoing(self, contract_id: str, preimage: bytes) -> Msat:
        """Claim an outgoing contract locked to the gateway with its preimage."""
        operation_id = f"claim:{contract_id}"
        done = await self.wallet.get(operation_id)
        if done is not None and done.state is OperationState.DONE:
            return _kept(done)
        contract = await self.verify_outgoing(contract_id)
        if done is None:
            if not contract.gateway_key_matches:
                raise InvalidInput(f"contract {contract_id} is not locked to this gateway's key")
            if hashlib.sha256(preimage).hexdigest() != contract.payment_hash:
                raise InvalidInput("the preimage does not match the contract's payment hash")
            if contract.state is not OutgoingState.FUNDED:
                raise FederationRejected(f"claim: contract_state: contract is {contract.state.value}")
        claim = {"kind": "outgoing_claim", "contract_id": contract_id, "preimage": preimage.hex()}
        return await self.spend_contract("claim_outgoing", claim, contract.amount, operation_id)

    async def refund_incoming(self, contract_id: str, amount: Msat, refunded: bool = False) -> Msat | None:
        """Take back the gateway's funding of an incoming contract whose preimage was invalid.

        `refunded`: the federation already shows the contract refunded; only an unfinished
        operation of ours is then completed. Returns what the refund gave back (None: not ours).
        """
        operation_id = f"refund:{contract_id}"
        if refunded and await self.wallet.get(operation_id) is None:
            return None
        refund = {"kind": "incoming_refund", "contract_id": contract_id}
        return await self.spend_contract("refund_incoming", refund, amount, operation_id)

    def reissue_plan(self, notes: Sequence[Note]) -> tuple[str, TxBuilder, Msat]:
        """The operation id, transaction builder and total of reissuing `notes` to the gateway."""
        inputs = reissue_inputs(notes)
        build = self.builder([], [])

        def with_notes(chosen: Sequence[Note], change: Sequence[PendingOutput]) -> dict[str, Any]:
            tx = build(chosen, change)
            tx["inputs"] = [*inputs, *tx["inputs"]]
            tx["signatures"] = [None] * len(tx["inputs"])
            return tx

        return "reissue:" + object_id(inputs), with_notes, Msat(sum(n.amount_msat for n in notes))

    async def resume(self) -> int:
        """Finish (or settle the abandon of) every operation a crash left prepared; returns how
        many were settled. Operations running in this process are left to their caller, and
        fundings to their payment flows (resubmitting the funding of a receive whose HTLC is
        gone would pay its receiver for nothing), except accepted ones: their change notes are
        finished now, or in the background until enough guardians sign. Raises the first failure
        (FederationUnreachable, ...) after trying all of them."""
        settled = 0
        failure: GatewayError | None = None
        for op in await self.wallet.unfinished():
            lock = self._locks.get(op.operation_id)
            if (lock is not None and lock.locked()) or self._finisher.running(op.operation_id):
                continue  # in flight in this process: its caller (or the finisher) finishes it
            accepted_funding = op.kind == "fund_incoming" and bool(op.result.get("accepted"))
            if op.kind == "fund_incoming" and not accepted_funding:
                continue  # its payment flow resumes and decides: fund, or abandon (HTLC gone)
            target_id = op.result.get("conflicts_with")
            if target_id:  # settles with its target; left over only if the target landed first
                target = await self.wallet.get(str(target_id))
                if target is not None and target.state is OperationState.DONE:
                    await self.wallet.abort(op.operation_id, "the operation it conflicts with was accepted")
                continue
            given: list[PendingOutput] = []
            if op.kind == "spend_ecash":
                spent = sum(int(i["amount_msat"]) for i in op.tx["inputs"])
                kept = sum(o.amount_msat for o in op.outputs)
                given = derived_outputs(self.secret, op.operation_id, spent - kept - self.keys.tx_fee.value)
            if accepted_funding:  # accepted: only its change notes are missing
                try:
                    await self.finish_accepted(op.operation_id)
                except GatewayError:
                    self._finisher.start(op.operation_id)  # asked again until enough guardians sign
                    continue
                settled += 1
                continue
            try:
                if op.kind == "spend_ecash" and op.operation_id.startswith("spend:" + VOLATILE_PREFIX):
                    await self._reclaim(op.operation_id, given)
                else:
                    await self.run(op.operation_id, op.kind, self.builder([], []), given=given)
            except FederationRejected:
                pass  # refused by a threshold or abandoned: settled, its notes released
            except GatewayError as exc:
                failure = failure or exc
                continue
            settled += 1
        if failure is not None:
            raise failure
        return settled
