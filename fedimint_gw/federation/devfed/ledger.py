"""Private: the gateway's ecash operations in one devfed federation, shared by v1 and v2.

Every transaction goes through `NoteWallet` in three persisted steps: `prepare` (reserve
inputs, store change outputs with blinding factors and the signed transaction), submit the
stored transaction to one reachable guardian, then collect every guardian's signature shares
and `complete` (or `abort` on a definitive refusal). Operation ids are deterministic
(`fund:<op>`, `claim:<contract>`, `refund:<contract>`, `spend:<op>`, `reissue:<hash>`), so a
retry after a crash or timeout resubmits the identical transaction; devfed answers an
accepted transaction's replay identically, and the outputs are finished then.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.scalar import N, scalar_to_hex
from fedimint_gw.crypto.threshold_bdhke import BlindSignatureShare, verify_share
from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import (
    FederationMisbehaved,
    FederationRejected,
    FederationUnreachable,
    InvalidInput,
    NotFound,
)
from fedimint_gw.federation.client import (
    EcashNotes,
    IncomingOutcome,
    IncomingState,
    NotesSummary,
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
from fedimint_gw.federation.ecash import Note, PendingOutput, denominations_for, finish_outputs
from fedimint_gw.federation.notes import NoteWallet, Operation, OperationState, TxBuilder

NOTES_PREFIX = "devfednotes1"
_ZERO = Msat(0)
MAX_DENOMINATION = 1 << 40
_OUTGOING_STATES = {
    "funded": OutgoingState.FUNDED,
    "claimed": OutgoingState.CLAIMED,
    "cancelled": OutgoingState.CANCELLED,
    "refunded": OutgoingState.REFUNDED,
}


def _kept(op: Operation) -> Msat:
    """What an operation that spends no gateway notes (claim, refund, reissue) gained."""
    return Msat(sum(o.amount_msat for o in op.outputs))


def encode_notes(federation_id: str, notes: Sequence[Note]) -> str:
    """The devfed wallet's out-of-band format: `devfednotes1` + unpadded base64url(JSON)."""
    body = {"federation_id": federation_id, "notes": [n.to_input() for n in notes]}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    return NOTES_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _hex(value: object, size: int) -> str:
    text = str(value).lower()
    if len(text) != 2 * size or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"expected {size} bytes of hex")
    return text


def decode_notes(text: str) -> tuple[str, list[Note]]:
    """Parse `encode_notes` output (and the devfed wallet's); raises InvalidInput."""
    text = text.strip()
    if not text.startswith(NOTES_PREFIX):
        raise InvalidInput(f"ecash notes must start with {NOTES_PREFIX!r}")
    raw = text[len(NOTES_PREFIX) :]
    try:
        body = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        notes = []
        for n in body["notes"]:
            amount = n["amount_msat"]
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1 or amount & (amount - 1):
                raise ValueError(f"{amount!r} is not a power-of-two amount")
            if amount > MAX_DENOMINATION:
                raise ValueError(f"{amount} is above the largest denomination")
            notes.append(Note(amount, _hex(n["secret"], 32), _hex(n["C"], 33)))
        federation_id = _hex(body["federation_id"], 32)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidInput(f"malformed ecash notes: {exc}") from None
    if not notes or len({n.secret for n in notes}) != len(notes):
        raise InvalidInput("ecash notes must hold at least one note and no note twice")
    return federation_id, notes


def derived_outputs(secret: bytes, operation_id: str, amount_msat: int) -> list[PendingOutput]:
    """Note outputs derived from the gateway key and the operation id.

    Used for notes the gateway gives away (`spend_ecash`): the stored transaction names their
    blinded messages, and a retry re-derives the secrets and blinding factors, so nothing but
    the operation itself needs persisting before submission.
    """
    outputs = []
    for i, denom in enumerate(denominations_for(amount_msat)):
        seed = hashlib.sha256(b"fedimint-gw/spend-ecash\x00" + secret + operation_id.encode() + b"\x00%d" % i)
        note_secret = hashlib.sha256(seed.digest() + b"secret").hexdigest()
        r = int.from_bytes(hashlib.sha256(seed.digest() + b"blind").digest(), "big") % (N - 1) + 1
        outputs.append(PendingOutput(denom, note_secret, scalar_to_hex(r)))
    return outputs


async def poll(attempt: Callable[[], Awaitable[IncomingOutcome | None]], timeout: float) -> IncomingOutcome:
    """Call `attempt` until it decides or `timeout` passes (then PENDING, or the last
    FederationUnreachable if the federation never answered during the last attempt)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(timeout, 0.0)
    delay = 0.02
    while True:
        failure: FederationUnreachable | None = None
        try:
            outcome = await attempt()
        except FederationUnreachable as exc:
            failure, outcome = exc, None
        if outcome is not None:
            return outcome
        remaining = deadline - loop.time()
        if remaining <= 0:
            if failure is not None:
                raise failure
            return IncomingOutcome(IncomingState.PENDING)
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.5)


def parse_hash(value: str, what: str = "payment hash") -> str:
    """A 32-byte hex id, lowercased; InvalidInput otherwise."""
    try:
        return _hex(value, 32)
    except ValueError:
        raise InvalidInput(f"{what} must be 32 bytes of hex, got {value!r}") from None


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
        self.misbehaving: set[int] = set()  # peer ids whose shares failed verification
        # One lock per operation in flight (entries vanish when no caller holds them).
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # ---- reads ---------------------------------------------------------------------------
    async def contract(self, contract_id: str) -> Json:
        """The contract view from one guardian, checked against its id."""
        view = await self.guardians.first(
            lambda g: self.api.contract(g.url, contract_id), f"contract {contract_id[:16]}"
        )
        body = view.get("contract")
        if not isinstance(body, dict) or object_id(body) != contract_id or "state" not in view:
            raise FederationMisbehaved(f"a guardian sent a contract view that is not contract {contract_id}")
        return view

    async def block_height(self) -> int:
        """The federation's block height."""
        return await self.guardians.first(lambda g: self.api.block_height(g.url), "block height")

    async def verify_outgoing(self, contract_id: str) -> OutgoingContract:
        """An outgoing contract as the gateway sees it."""
        body = (view := await self.contract(contract_id))["contract"]
        if body.get("kind") != "outgoing_contract":
            raise InvalidInput(f"contract {contract_id} is a {body.get('kind')}, not an outgoing contract")
        try:
            return OutgoingContract(
                contract_id=contract_id,
                payment_hash=str(body["payment_hash"]),
                amount=Msat(int(body["amount_msat"])),
                timelock_height=int(body["timelock_height"]),
                state=_OUTGOING_STATES[str(view["state"])],
                gateway_key_matches=body.get("gateway_pubkey") == self.gateway_pubkey,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise FederationMisbehaved(f"malformed outgoing contract view: {exc!r}") from None

    # ---- operations ------------------------------------------------------------------------
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
    ) -> tuple[Operation, dict[str, Any]]:
        """Prepare (or find) the operation, submit its stored transaction, finish its notes.

        `given` are note outputs (among `fixed_outputs`) handed out rather than kept; their
        notes are returned in the result as `given`. Returns the operation and its result.
        Concurrent calls with one operation id run one after the other.
        """
        lock = self._locks.setdefault(operation_id, asyncio.Lock())
        async with lock:
            return await self._run(operation_id, kind, build, spend, receive, fixed_outputs, given)

    async def _run(
        self,
        operation_id: str,
        kind: str,
        build: TxBuilder,
        spend: Msat,
        receive: Msat,
        fixed_outputs: Sequence[Json],
        given: Sequence[PendingOutput],
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
        txid = txid_of(op.tx)
        what = f"{kind} transaction {txid[:16]}"
        try:
            answer = await self.guardians.first(lambda g: self.api.submit(g.url, op.tx), what)
        except (FederationRejected, NotFound) as exc:
            await self.wallet.abort(operation_id, exc.message, _double_spent(op.tx, exc.message))
            raise
        outputs = [*given, *op.outputs]
        notes = await self.finish(txid, op.tx, outputs) if outputs else []
        result: dict[str, Any] = {"txid": txid, "height": answer.get("height")}
        if given:
            result["given"] = [n.to_input() for n in notes[: len(given)]]
        await self.wallet.complete(operation_id, notes[len(given) :], result)
        return op, result

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
        """Buy a contract output with gateway notes; returns the contract id."""
        amount = Msat(int(output["amount_msat"]))
        build = self.builder([], [output])
        await self.run(f"fund:{operation_id}", "fund_incoming", build, spend=amount, fixed_outputs=[output])
        return object_id(output)

    async def abandon_funding(self, operation_id: str) -> bool:
        """Give up a funding whose outcome is unknown: True if it certainly never happened (it is
        then aborted and never resubmitted), False if the federation accepted it."""
        op_id = f"fund:{operation_id}"
        lock = self._locks.setdefault(op_id, asyncio.Lock())
        async with lock:
            op = await self.wallet.get(op_id)
            if op is None or op.state is OperationState.FAILED:
                return True
            if op.state is OperationState.DONE:
                return False
            txid = txid_of(op.tx)
            try:
                await self.guardians.first(
                    lambda g: self.api.transaction(g.url, txid), f"status of {txid[:16]}"
                )
            except NotFound:
                await self.wallet.abort(op_id, "abandoned: the federation never accepted it")
                return True
            return False

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

    async def refund_incoming(self, contract_id: str, amount: Msat, refunded: bool = False) -> None:
        """Take back the gateway's funding of an incoming contract whose preimage was invalid.

        `refunded`: the federation already shows the contract refunded; only an unfinished
        operation of ours is then completed.
        """
        operation_id = f"refund:{contract_id}"
        if refunded and await self.wallet.get(operation_id) is None:
            return
        refund = {"kind": "incoming_refund", "contract_id": contract_id}
        await self.spend_contract("refund_incoming", refund, amount, operation_id)

    async def spend_ecash(self, amount: Msat, operation_id: str) -> EcashNotes:
        """Reissue exactly `amount` into fresh notes and hand them out serialised."""
        if amount.value <= 0:
            raise InvalidInput("the amount of ecash to spend must be positive")
        oid = f"spend:{operation_id}"
        given = derived_outputs(self.secret, oid, amount.value)
        fixed = [o.to_output() for o in given]
        build = self.builder([], fixed)
        _, result = await self.run(oid, "spend_ecash", build, spend=amount, fixed_outputs=fixed, given=given)
        notes = [Note(int(n["amount_msat"]), str(n["secret"]), str(n["C"])) for n in result["given"]]
        if sum(n.amount_msat for n in notes) != amount.value:
            raise InvalidInput(f"operation id {operation_id!r} was already used for another amount")
        return EcashNotes(amount, encode_notes(self.federation_id, notes))

    async def receive_ecash(self, text: str) -> Msat:
        """Reissue out-of-band notes into gateway notes; returns the msat received."""
        federation_id, notes = decode_notes(text)
        if federation_id != self.federation_id:
            raise InvalidInput(
                f"these notes belong to federation {federation_id[:8]}, not {self.federation_id[:8]}"
            )
        total = Msat(sum(n.amount_msat for n in notes))
        if total <= self.keys.tx_fee:
            raise InvalidInput(f"notes worth {total} cannot pay the {self.keys.tx_fee} transaction fee")
        inputs = _reissue_inputs(notes)
        oid = "reissue:" + object_id(inputs)
        build = self.builder([], [])

        def with_notes(chosen: Sequence[Note], change: Sequence[PendingOutput]) -> dict[str, Any]:
            tx = build(chosen, change)
            tx["inputs"] = [*inputs, *tx["inputs"]]
            tx["signatures"] = [None] * len(tx["inputs"])
            return tx

        op, _ = await self.run(oid, "receive_ecash", with_notes, receive=total)
        return _kept(op)

    async def inspect_ecash(self, text: str) -> NotesSummary:
        """Decode notes; `received` when a reissue of exactly these notes exists in our wallet."""
        federation_id, notes = decode_notes(text)
        oid = "reissue:" + object_id(_reissue_inputs(notes))
        received = federation_id == self.federation_id and await self.wallet.get(oid) is not None
        return NotesSummary(federation_id, Msat(sum(n.amount_msat for n in notes)), oid, received)

    async def resume(self) -> int:
        """Finish every operation left prepared by a crash; returns how many were finished."""
        finished = 0
        for op in await self.wallet.unfinished():
            given: list[PendingOutput] = []
            if op.kind == "spend_ecash":
                spent = sum(int(i["amount_msat"]) for i in op.tx["inputs"])
                kept = sum(o.amount_msat for o in op.outputs)
                given = derived_outputs(self.secret, op.operation_id, spent - kept - self.keys.tx_fee.value)
            await self.run(op.operation_id, op.kind, self.builder([], []), given=given)
            finished += 1
        return finished


def _reissue_inputs(notes: Sequence[Note]) -> list[dict[str, object]]:
    return sorted((n.to_input() for n in notes), key=lambda i: str(i["secret"]))


def _double_spent(tx: Mapping[str, Any], message: str) -> list[str]:
    """The note secrets a `double_spend` refusal names (devfed says `inputs[i] ... already spent`)."""
    if "double_spend" not in message:
        return []
    inputs = tx.get("inputs", [])
    found = []
    for i in re.findall(r"inputs\[(\d+)\]", message):
        idx = int(i)
        if idx < len(inputs) and inputs[idx].get("kind") == "note":
            found.append(str(inputs[idx]["secret"]))
    return found
