"""The sequencer of devfed's Fedimint family: one orderer, one transaction per session.

A submitted transaction is decoded and checked as Fedimint's consensus does
(`fedimint-server` `process_transaction`, v0.5-v0.7 reading): every input by its module (the
mint: tier, note signature, nonce not spent), every output (tier, fresh blind nonce), the
balance (inputs == outputs + fees under core consensus 2.0; inputs >= outputs + fees from 2.1,
where overpaying is allowed), and one valid BIP-340 signature per input key over the txid.
An accepted transaction is applied atomically (spent nonces, used blind nonces, outputs) and
waiters are woken. The same transaction submitted again gets the same outcome. Signing is not
done here: each guardian signs accepted outputs with its own shares when asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from contrib.devfed.fedimint.ln import LnConsensus, LnRefusal, LnTx
from contrib.devfed.fedimint.mint import CheckedInput, CheckedOutput, MintError, MintRefusal, MintVerifier
from contrib.devfed.fedimint.modules import ConsensusModule, ItemEffect, ModuleRefusal
from contrib.devfed.fedimint.store import FedimintStore, StoredOutput
from fedimint_gw.fedimint.config import ConsensusVersion
from fedimint_gw.fedimint.encoding import Err, Ok, encode
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.transaction import (
    OutPoint,
    Transaction,
    TransactionError,
    TransactionSubmissionOutcome,
)

log = logging.getLogger("devfed.fedimint")
OVERPAY_FROM = ConsensusVersion(2, 1)


class NoConsensus(Exception):
    """Fewer than a threshold of guardians are online: nothing can be ordered."""


class Source:
    """Where a transaction came from (kept with it)."""

    API = "api"
    FAUCET = "faucet"


class Sequencer:
    """Orders, checks and applies transactions; wakes whoever awaits them."""

    def __init__(
        self,
        store: FedimintStore,
        verifier: MintVerifier,
        mint_instance_id: int,
        core_consensus: ConsensusVersion,
        faucet_limit_msat: int,
        online: Callable[[], int],
        threshold: int,
        modules: Mapping[int, ConsensusModule] | None = None,
        ln: LnConsensus | None = None,
    ) -> None:
        self.store = store
        self.modules: dict[int, ConsensusModule] = dict(modules or {})
        """Further modules by instance id (``lnv2``...): checked by their own rules."""
        self.ln = ln
        """The LNv1 module, when the federation serves it (its inputs and outputs are checked and
        applied in the same transaction as the mint's; decryption runs after the commit)."""
        self._online = online
        self._threshold = threshold
        self.verifier = verifier
        self.mint_instance_id = mint_instance_id
        self.core_consensus = core_consensus
        self.faucet_limit_msat = faucet_limit_msat
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self.recheck_accepted = False
        """Fault injection: check a resubmitted, already accepted transaction again (its inputs
        are spent by then, so it is refused), as a federation that does not remember
        submissions might. Clients must then ask `await_transaction` before giving up."""

    async def submit(self, tx_bytes: bytes, source: str = Source.API) -> TransactionSubmissionOutcome:
        """Check and apply a transaction (its consensus encoding); DecodeError if it is garbage."""
        tx = Transaction.from_bytes(tx_bytes)
        txid = tx.txid()
        online = self._online()
        if online < self._threshold:
            raise NoConsensus(
                f"only {online} guardians are online, {self._threshold} are needed for consensus"
            )
        async with self._lock:
            if self.store.transaction(txid) is not None and not self.recheck_accepted:
                return TransactionSubmissionOutcome(Ok(txid))
            ln_tx = self.ln.begin() if self.ln is not None else None
            try:
                inputs, outputs, effects = self._check(tx, source, ln_tx)
            except _Rejected as rejected:
                log.info("transaction %s refused: %s", txid.hex(), rejected.reason)
                with self.store.atomic():
                    self.store.add_rejection(txid, _encode_error(rejected.error))
                return TransactionSubmissionOutcome(Err(rejected.error))
            with self.store.atomic():
                for item in inputs:
                    self.store.mark_spent(item.nonce, txid)
                for out_idx, out in outputs:
                    self.store.mark_blind_nonce(out.blind_nonce, txid)
                    self.store.add_output(txid, out_idx, out.amount, out.blind_nonce)
                for effect in effects:
                    effect.apply(txid)
                if self.ln is not None and ln_tx is not None:
                    self.ln.apply(ln_tx, txid)
                session = self.store.add_transaction(txid, tx.to_bytes(), source)
            log.info("transaction %s accepted in session %d (%s)", txid.hex(), session, source)
            if self.ln is not None and ln_tx is not None and ln_tx.to_decrypt:
                self.ln.decrypt_pending()
        async with self._changed:
            self._changed.notify_all()
        return TransactionSubmissionOutcome(Ok(txid))

    def _check(
        self, tx: Transaction, source: str, ln_tx: LnTx | None = None
    ) -> tuple[list[CheckedInput], list[tuple[int, CheckedOutput]], list[ItemEffect]]:
        inputs: list[CheckedInput] = []
        effects: list[ItemEffect] = []
        keys: list[bytes] = []
        ln_in = ln_out = ln_fee = 0
        seen: set[bytes] = set()
        for i, item in enumerate(tx.inputs):
            module = self.modules.get(item.module_instance_id)
            if module is not None:
                effect = _module_input(module, item.module_instance_id, item.data)
                if effect.unique in seen:
                    raise _Rejected(
                        TransactionError.input_error(item.module_instance_id, b""), f"input {i} spent twice"
                    )
                seen.add(effect.unique)
                effects.append(effect)
                keys.append(effect.pubkey)
                continue
            if self.ln is not None and ln_tx is not None and item.module_instance_id == self.ln.instance_id:
                try:
                    amount, key, fee = self.ln.check_input(ln_tx, item.data)
                except LnRefusal as refusal:
                    error = TransactionError.input_error(item.module_instance_id, refusal.encoded())
                    raise _Rejected(error, f"input {i}: {refusal}") from None
                ln_in, ln_fee = ln_in + amount, ln_fee + fee
                keys.append(key)
                continue
            if item.module_instance_id != self.mint_instance_id:
                raise DecodeError(f"input {i} names unknown module instance {item.module_instance_id}")
            try:
                checked = self.verifier.check_input(item.data)
                if checked.nonce in seen or self.store.spent_by(checked.nonce) is not None:
                    raise MintRefusal(MintError.SPENT_COIN, f"input {i}: the note is already spent")
            except MintRefusal as refusal:
                raise _Rejected(
                    TransactionError.input_error(item.module_instance_id, refusal.encoded()), str(refusal)
                ) from None
            seen.add(checked.nonce)
            inputs.append(checked)
            keys.append(checked.nonce)
        outputs: list[tuple[int, CheckedOutput]] = []
        out_effects: list[ItemEffect] = []
        blind: set[bytes] = set()
        txid = tx.txid()
        for j, item in enumerate(tx.outputs):
            module = self.modules.get(item.module_instance_id)
            if module is not None:
                out_effects.append(_module_output(module, item.module_instance_id, item.data, txid, j))
                continue
            if self.ln is not None and ln_tx is not None and item.module_instance_id == self.ln.instance_id:
                try:
                    amount, fee = self.ln.check_output(ln_tx, j, item.data, OutPoint(txid, j))
                except LnRefusal as refusal:
                    error = TransactionError.output_error(item.module_instance_id, refusal.encoded())
                    raise _Rejected(error, f"output {j}: {refusal}") from None
                ln_out, ln_fee = ln_out + amount, ln_fee + fee
                continue
            if item.module_instance_id != self.mint_instance_id:
                raise DecodeError(f"output {j} names unknown module instance {item.module_instance_id}")
            try:
                out = self.verifier.check_output(item.data)
                if out.blind_nonce in blind or self.store.blind_nonce_used(out.blind_nonce):
                    raise MintRefusal(
                        MintError.BLIND_NONCE_USED, f"output {j}: the blind nonce was used before"
                    )
            except MintRefusal as refusal:
                raise _Rejected(
                    TransactionError.output_error(item.module_instance_id, refusal.encoded()), str(refusal)
                ) from None
            blind.add(out.blind_nonce)
            outputs.append((j, out))
        self._check_balance(
            inputs, [o for _, o in outputs], source, effects, out_effects, (ln_in, ln_out, ln_fee)
        )
        if not isinstance(tx.signatures, tuple) or len(tx.signatures) != len(keys):
            raise _Rejected(TransactionError.invalid_witness_length(), "wrong number of signatures")
        if not tx.signatures_valid(keys):
            raise _Rejected(
                TransactionError.invalid_signature(tx.to_hex(), txid.hex(), "", ""), "a signature is invalid"
            )
        return inputs, outputs, effects + out_effects

    def _check_balance(
        self,
        inputs: list[CheckedInput],
        outputs: list[CheckedOutput],
        source: str,
        in_effects: list[ItemEffect] | None = None,
        out_effects: list[ItemEffect] | None = None,
        ln: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        """`ln` = the LNv1 items' (inputs, outputs, fees) in msat; effects are other modules' items."""
        ln_in, ln_out, ln_fee = ln
        extra = (in_effects or []) + (out_effects or [])
        fee = (
            ln_fee
            + sum(self.verifier.fee(i.amount) for i in inputs)
            + sum(self.verifier.fee(o.amount) for o in outputs)
            + sum(e.fee for e in extra)
        )
        total_in = ln_in + sum(i.amount for i in inputs) + sum(e.amount for e in in_effects or [])
        total_out = ln_out + sum(o.amount for o in outputs) + sum(e.amount for e in out_effects or [])
        if source == Source.FAUCET:
            if inputs or extra or ln_in or ln_out or total_out > self.faucet_limit_msat:
                raise _Rejected(
                    TransactionError.unbalanced(total_in, total_out, fee),
                    f"the faucet issues at most {self.faucet_limit_msat} msat, without inputs",
                )
            return
        overpay = self.core_consensus >= OVERPAY_FROM
        if total_in < total_out + fee or (total_in != total_out + fee and not overpay):
            raise _Rejected(
                TransactionError.unbalanced(total_in, total_out, fee),
                f"unbalanced: inputs {total_in}, outputs {total_out}, fees {fee} msat",
            )

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until `predicate()` holds (checked after every change); TimeoutError after `timeout`."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def notify(self) -> None:
        """Wake the waiters: state changed outside a submission (block count, decryption retry)."""
        async with self._changed:
            self._changed.notify_all()

    async def retry_decryptions(self) -> None:
        """Decrypt the incoming contracts left pending (too few guardians were online before)."""
        if self.ln is None:
            return
        async with self._lock:
            done = self.ln.decrypt_pending()
        if done:
            await self.notify()

    async def await_accepted(self, txid: bytes, timeout: float) -> int:
        """The session of an accepted transaction, waiting for it up to `timeout` seconds."""

        def accepted() -> bool:
            return self.store.transaction(txid) is not None

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(accepted), timeout)
        found = self.store.transaction(txid)
        if found is None:  # pragma: no cover - wait_for returned
            raise TimeoutError
        return found[0]

    async def await_output(self, txid: bytes, out_idx: int, timeout: float) -> StoredOutput:
        """A mint output of an accepted transaction (waiting for the transaction); KeyError if
        the accepted transaction has no such output."""
        await self.await_accepted(txid, timeout)
        out = self.store.output(txid, out_idx)
        if out is None:
            raise KeyError(f"transaction {txid.hex()} has no mint output {out_idx}")
        return out


class _Rejected(Exception):
    def __init__(self, error: TransactionError, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


def _module_input(module: ConsensusModule, instance: int, data: bytes) -> ItemEffect:
    try:
        return module.check_input(data)
    except ModuleRefusal as refusal:
        raise _Rejected(TransactionError.input_error(instance, refusal.encoded), refusal.reason) from None


def _module_output(
    module: ConsensusModule, instance: int, data: bytes, txid: bytes, out_idx: int
) -> ItemEffect:
    try:
        return module.check_output(data, txid, out_idx)
    except ModuleRefusal as refusal:
        raise _Rejected(TransactionError.output_error(instance, refusal.encoded), refusal.reason) from None


def _encode_error(error: TransactionError) -> bytes:
    return encode(error.write)
