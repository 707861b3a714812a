"""The sequencer: the documented single in-memory orderer of transactions.

It holds no secret key. It checks spent notes by asking every online guardian for
``k_i * Y`` with a DLEQ proof, verifies the proofs, and interpolates ``threshold`` of them;
it decrypts v1 offers (and checks v2 claims/refunds) by collecting verified decryption
shares from the guardians. With fewer than ``threshold`` honest online guardians nothing
is accepted (``no_consensus``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence

from contrib.devfed.chain import HeightSource
from contrib.devfed.codec import verify
from contrib.devfed.config import PublicConfig
from contrib.devfed.contracts import (
    CANCEL_PURPOSE,
    FORFEIT_PURPOSE,
    INPUT_PURPOSE,
    ContractState,
    contract_view,
)
from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.guardian import Guardian
from contrib.devfed.offers import OfferBook
from contrib.devfed.store import FederationStore
from contrib.devfed.transactions import (
    InputKind,
    OutputKind,
    Transaction,
    TxInput,
    TxOutput,
    offer_context,
    parse_transaction,
    v2_contract_context,
)
from fedimint_gw.crypto import dleq
from fedimint_gw.crypto.bdhke import hash_to_curve
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.point import Point
from fedimint_gw.crypto.shamir import PointShare, combine_points
from fedimint_gw.crypto.threshold_elgamal import Ciphertext, decrypt, verify_share

Json = dict[str, object]
S = ContractState


def _err(code: ErrorCode, message: str) -> DevfedError:
    return DevfedError(code, message)


class Sequencer:
    """Orders and applies transactions against the federation's persistent state."""

    def __init__(
        self,
        config: PublicConfig,
        guardians: Sequence[Guardian],
        store: FederationStore,
        chain: HeightSource,
        clock: Callable[[], float],
        faucet_limit_msat: int,
    ) -> None:
        self.config = config
        self.guardians = guardians
        self.store = store
        self.chain = chain
        self.offers = OfferBook(config, store, clock)
        self._faucet_limit = faucet_limit_msat
        self._lock = asyncio.Lock()

    # ---- consensus helpers -------------------------------------------------------------
    def _participants(self) -> list[Guardian]:
        online = [g for g in self.guardians if g.online]
        if len(online) < self.config.threshold:
            raise _err(
                ErrorCode.NO_CONSENSUS, f"only {len(online)} guardians online, need {self.config.threshold}"
            )
        return online

    def _note_valid(self, amount: int, secret: bytes, signature: Point) -> bool:
        y = hash_to_curve(secret)
        keys = self.config.mint_shares_for(amount)
        valid: list[PointShare] = []
        for guardian in self._participants():
            ev = guardian.evaluate_note(amount, y)
            if dleq.verify(ev.proof, keys[ev.index], y, ev.point):
                valid.append(PointShare(ev.index, ev.point))
            if len(valid) == self.config.threshold:
                return combine_points(valid) == signature
        raise _err(ErrorCode.NO_CONSENSUS, "too few valid guardian evaluations to check a note")

    def consensus_decrypt(self, ciphertext: Ciphertext, context: bytes) -> bytes | None:
        """Decrypt with verified shares of ``threshold`` online guardians; None if too few."""
        keys = self.config.ln_shares()
        shares = []
        for guardian in self.guardians:
            if not guardian.online:
                continue
            share = guardian.decryption_share(ciphertext, context)
            if verify_share(keys[share.index], ciphertext, share):
                shares.append(share)
            if len(shares) == self.config.threshold:
                return decrypt(
                    self.config.ln_pubkey, ciphertext, context, shares, keys, self.config.threshold
                )
        return None

    # ---- transactions -------------------------------------------------------------------
    async def submit(self, raw: object, *, faucet: bool = False) -> Json:
        """Validate and apply a transaction; the same transaction again gets the same answer."""
        tx = parse_transaction(raw, faucet=faucet)
        txid = tx.txid
        async with self._lock:
            known = self.store.get_transaction(txid)
            if known is not None:
                return known[1]
            height = await self.chain.height()
            with self.store.atomic():
                self._apply(tx, txid, height)
                result: Json = {"txid": txid, "status": "accepted", "height": height}
                self.store.add_transaction(txid, tx.to_dict(), result)
            return result

    def _apply(self, tx: Transaction, txid: str, height: int) -> None:
        if tx.faucet:
            total = sum(o.amount_msat for o in tx.outputs)
            if total > self._faucet_limit:
                raise _err(ErrorCode.FAUCET_LIMIT, f"faucet gives at most {self._faucet_limit} msat per call")
        self._participants()
        seen: set[str] = set()
        total_in = 0
        for i, inp in enumerate(tx.inputs):
            total_in += self._spend(inp, i, tx, txid, height, seen)
        total_out = 0
        for j, out in enumerate(tx.outputs):
            total_out += self._create(out, j, txid, height)
        fee = 0 if tx.faucet else self.config.tx_fee_msat
        if not tx.faucet and total_in != total_out + fee:
            raise _err(
                ErrorCode.UNBALANCED,
                f"inputs {total_in} msat must equal outputs {total_out} msat + fee {fee} msat",
            )

    def _signed(self, tx: Transaction, txid: str, i: int, pubkey: object) -> None:
        if not verify(str(pubkey), INPUT_PURPOSE, {"txid": txid, "input_index": i}, tx.signatures[i]):
            raise _err(ErrorCode.BAD_SIGNATURE, f"inputs[{i}] is not signed by the key its contract names")

    def _contract(self, contract_id: str) -> tuple[Json, ContractState, Json]:
        row = self.store.get_contract(contract_id)
        if row is None:
            raise _err(ErrorCode.UNKNOWN_CONTRACT, f"no contract {contract_id}")
        return row[0], ContractState(row[1]), row[2]

    def _spend(self, inp: TxInput, i: int, tx: Transaction, txid: str, height: int, seen: set[str]) -> int:
        if inp.kind is InputKind.NOTE:
            secret = bytes.fromhex(str(inp.body["secret"]))
            note_id = hash_to_curve(secret).to_hex()
            spent_in = self.store.spent_by(note_id)
            if note_id in seen or spent_in is not None:
                raise _err(
                    ErrorCode.DOUBLE_SPEND, f"inputs[{i}] note was already spent in {spent_in or txid}"
                )
            amount = int(str(inp.body["amount_msat"]))
            if not self._note_valid(amount, secret, Point.from_hex(str(inp.body["C"]))):
                raise _err(ErrorCode.INVALID_NOTE, f"inputs[{i}] is not a valid note of {amount} msat")
            seen.add(note_id)
            self.store.mark_spent(note_id, txid)
            return amount
        cid = inp.contract_id
        body, state, data = self._contract(cid)
        kind = OutputKind(str(body["kind"]))
        new_state = self._check_contract_input(inp, i, tx, txid, height, body, state, data, kind)
        self.store.put_contract(cid, body, new_state.value, data)
        return int(str(body["amount_msat"]))

    def _check_contract_input(
        self,
        inp: TxInput,
        i: int,
        tx: Transaction,
        txid: str,
        height: int,
        body: Json,
        state: ContractState,
        data: Json,
        kind: OutputKind,
    ) -> ContractState:
        def need(ok: bool, code: ErrorCode, message: str) -> None:
            if not ok:
                raise _err(code, f"inputs[{i}]: {message}")

        if inp.kind in (InputKind.OUTGOING_CLAIM, InputKind.OUTGOING_REFUND):
            need(kind is OutputKind.OUTGOING_CONTRACT, ErrorCode.CONTRACT_STATE, "not an outgoing contract")
        else:
            need(
                kind is not OutputKind.OUTGOING_CONTRACT, ErrorCode.CONTRACT_STATE, "not an incoming contract"
            )
        if inp.kind is InputKind.OUTGOING_CLAIM:
            need(state is S.FUNDED, ErrorCode.CONTRACT_STATE, f"contract is {state.value}, not funded")
            preimage = bytes.fromhex(str(inp.body["preimage"]))
            need(
                hashlib.sha256(preimage).hexdigest() == body["payment_hash"],
                ErrorCode.CONTRACT_STATE,
                "preimage does not match the payment hash",
            )
            self._signed(tx, txid, i, body["gateway_pubkey"])
            data["preimage"] = preimage.hex()
            return S.CLAIMED
        if inp.kind is InputKind.OUTGOING_REFUND:
            need(state in (S.FUNDED, S.CANCELLED), ErrorCode.CONTRACT_STATE, f"contract is {state.value}")
            forfeit = inp.body.get("forfeit_signature")
            if forfeit is not None:
                need(2 in self.config.majors, ErrorCode.UNSUPPORTED, "forfeit signatures are API v2")
                need(
                    verify(
                        str(body["gateway_pubkey"]),
                        FORFEIT_PURPOSE,
                        {"contract_id": inp.contract_id},
                        forfeit,
                    ),
                    ErrorCode.BAD_SIGNATURE,
                    "forfeit signature is invalid",
                )
            elif state is not S.CANCELLED:
                need(
                    height >= int(str(body["timelock_height"])),
                    ErrorCode.TIMELOCK,
                    f"timelock {body['timelock_height']} not reached (height {height})",
                )
            self._signed(tx, txid, i, body["refund_pubkey"])
            return S.REFUNDED
        if kind is OutputKind.INCOMING_CONTRACT_V1:
            if state is S.DECRYPTING:
                state = self._decrypt_v1(inp.contract_id, body, data)
            want = S.PREIMAGE if inp.kind is InputKind.INCOMING_CLAIM else S.REFUND
            need(state is want, ErrorCode.CONTRACT_STATE, f"contract is {state.value}, not {want.value}")
            signer = data["claim_pubkey"] if want is S.PREIMAGE else body["refund_pubkey"]
            self._signed(tx, txid, i, signer)
            return S.CLAIMED if want is S.PREIMAGE else S.REFUNDED
        need(state is S.FUNDED, ErrorCode.CONTRACT_STATE, f"contract is {state.value}, not funded")
        ciphertext = Ciphertext.from_dict(body["encrypted_preimage"])
        decrypted = self.consensus_decrypt(ciphertext, v2_contract_context(body))
        if decrypted is None:
            raise _err(ErrorCode.NO_CONSENSUS, f"inputs[{i}]: too few guardians to decrypt")
        preimage = decrypted
        valid = preimage is not None and hashlib.sha256(preimage).hexdigest() == body["payment_hash"]
        if inp.kind is InputKind.INCOMING_CLAIM:
            need(
                valid,
                ErrorCode.CONTRACT_STATE,
                "the encrypted preimage is invalid: only a refund is possible",
            )
            self._signed(tx, txid, i, body["claim_pubkey"])
            data["preimage"] = preimage.hex() if preimage else None
            return S.CLAIMED
        need(not valid, ErrorCode.CONTRACT_STATE, "the preimage is valid: the gateway may not refund")
        self._signed(tx, txid, i, body["refund_pubkey"])
        return S.REFUNDED

    def _create(self, out: TxOutput, j: int, txid: str, height: int) -> int:
        if out.kind is OutputKind.NOTE:
            return out.amount_msat
        cid = out.contract_id
        if self.store.get_contract(cid) is not None:
            raise _err(ErrorCode.CONTRACT_EXISTS, f"outputs[{j}] contract {cid} already exists")
        body = dict(out.body)
        data: Json = {"funded_txid": txid}
        state = S.FUNDED
        if out.kind is OutputKind.OUTGOING_CONTRACT:
            if int(str(body["timelock_height"])) <= height:
                raise _err(ErrorCode.TIMELOCK, f"outputs[{j}] timelock must be above the height {height}")
        elif out.kind is OutputKind.INCOMING_CONTRACT_V1:
            if 1 not in self.config.majors:
                raise _err(ErrorCode.UNSUPPORTED, "incoming_contract_v1 needs API v1")
            offer = self.offers.take_for_contract(str(body["payment_hash"]), out.amount_msat, cid)
            data["claim_pubkey"] = offer["claim_pubkey"]
            data["offer"] = offer
            state = S.DECRYPTING
        elif 2 not in self.config.majors:
            raise _err(ErrorCode.UNSUPPORTED, "incoming_contract_v2 needs API v2")
        self.store.put_contract(cid, body, state.value, data)
        if state is S.DECRYPTING:
            self._decrypt_v1(cid, body, data)
        return out.amount_msat

    def _decrypt_v1(self, cid: str, body: Json, data: Json) -> ContractState:
        offer: Mapping[str, object] = data["offer"]  # type: ignore[assignment]
        ciphertext = Ciphertext.from_dict(offer["encrypted_preimage"])
        try:
            preimage = self.consensus_decrypt(ciphertext, offer_context(offer))
        except CryptoError:
            preimage = None
        if preimage is None:
            return S.DECRYPTING
        valid = hashlib.sha256(preimage).hexdigest() == body["payment_hash"]
        data["preimage"] = preimage.hex()
        state = S.PREIMAGE if valid else S.REFUND
        self.store.put_contract(cid, body, state.value, data)
        return state

    # ---- reads and non-transaction actions -------------------------------------------------
    def transaction(self, txid: str) -> tuple[Json, Json]:
        """``(body, result)`` of an accepted transaction, else ``unknown_transaction``."""
        row = self.store.get_transaction(txid)
        if row is None:
            raise _err(ErrorCode.UNKNOWN_TRANSACTION, f"no accepted transaction {txid}")
        return row

    def contract(self, contract_id: str) -> Json:
        """The contract view; a v1 contract still decrypting is retried first."""
        body, state, data = self._contract(contract_id)
        if state is S.DECRYPTING:
            with self.store.atomic():
                state = self._decrypt_v1(contract_id, body, data)
        view = contract_view(contract_id, body, state, data)
        if body["kind"] == OutputKind.INCOMING_CONTRACT_V2.value:
            view["preimage"] = data.get("preimage")  # only after a claim revealed it
        return view

    def contract_body(self, contract_id: str) -> tuple[Json, ContractState]:
        """Body and state of a contract, else ``unknown_contract``."""
        body, state, _ = self._contract(contract_id)
        return body, state

    async def cancel_outgoing(self, contract_id: str, signature: object) -> Json:
        """v1: the gateway cancels a funded outgoing contract so the user can refund at once."""
        async with self._lock:
            body, state, data = self._contract(contract_id)
            if body["kind"] != OutputKind.OUTGOING_CONTRACT.value:
                raise _err(ErrorCode.CONTRACT_STATE, "only outgoing contracts can be cancelled")
            if not verify(
                str(body["gateway_pubkey"]), CANCEL_PURPOSE, {"contract_id": contract_id}, signature
            ):
                raise _err(ErrorCode.BAD_SIGNATURE, "cancel must be signed by the contract's gateway key")
            if state not in (S.FUNDED, S.CANCELLED):
                raise _err(ErrorCode.CONTRACT_STATE, f"contract is {state.value}, cannot cancel")
            with self.store.atomic():
                self.store.put_contract(contract_id, body, S.CANCELLED.value, data)
            return contract_view(contract_id, body, S.CANCELLED, data)
