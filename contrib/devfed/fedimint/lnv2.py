"""devfed's LNv2 module (kind ``lnv2``), server side, as read in ``modules/fedimint-lnv2-server``:

- outputs: ``Outgoing(contract)`` is stored at its out point; ``Incoming(contract)`` only if its
  tpe ciphertext verifies against its commitment (else ``InvalidContract``) and it has not
  expired (its expiration is a unix time, as in the newest server; else ``ContractExpired``);
- inputs spend a stored contract once (``UnknownContract`` otherwise):
  ``Outgoing + Claim(preimage)`` before expiry with a matching preimage, signed by ``claim_pk``
  (the preimage is then served by ``await_preimage``); ``Outgoing + Refund`` from expiry on,
  signed by ``refund_pk``; ``Outgoing + Cancel(sig)`` with the gateway's forfeit signature,
  signed by ``refund_pk``; ``Incoming(agg_dk)`` with a key that verifies, signed by
  ``claim_pk`` when it decrypts to the preimage and by ``refund_pk`` when it does not;
- each guardian answers ``decryption_key_share`` for a funded incoming contract with its own
  tpe key share (a byzantine guardian with a wrong one);
- the gateway list is vetted: only the admin adds and removes gateways.
Expirations of outgoing contracts are block counts: devfed's counter, moved by the admin.
Error variants (``LightningInputError``: 0 UnknownInputVariant, 1 UnknownContract,
2 InvalidPreimage, 3 Expired, 4 NotExpired, 5 InvalidDecryptionKey, 6 InvalidForfeitSignature;
``LightningOutputError``: 0 UnknownOutputVariant, 1 InvalidContract, 2 ContractExpired) follow
the upstream enum order.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable

from contrib.devfed.fedimint.mint import FaultMode, MintGuardian
from contrib.devfed.fedimint.modules import ItemEffect, ModuleRefusal
from contrib.devfed.fedimint.store import FedimintStore
from fedimint_gw.crypto.bls import tpe
from fedimint_gw.crypto.bls.fields import R
from fedimint_gw.fedimint.encoding import UnknownVariant, encode
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.lnv2.config import Lnv2ClientConfig
from fedimint_gw.fedimint.lnv2.contracts import IncomingContract, OutgoingContract
from fedimint_gw.fedimint.transaction import OutPoint

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lnv2_contracts (
    txid TEXT NOT NULL, out_idx INTEGER NOT NULL, incoming INTEGER NOT NULL,
    contract_id TEXT NOT NULL, contract_hex TEXT NOT NULL, spent_by TEXT,
    preimage_hex TEXT, PRIMARY KEY (txid, out_idx));
CREATE INDEX IF NOT EXISTS lnv2_contract_ids ON lnv2_contracts (contract_id);
CREATE TABLE IF NOT EXISTS lnv2_gateways (url TEXT PRIMARY KEY);
"""
BLOCK_COUNT_KEY = "lnv2_block_count"


class InputError(enum.IntEnum):
    UNKNOWN_CONTRACT = 1
    INVALID_PREIMAGE = 2
    EXPIRED = 3
    NOT_EXPIRED = 4
    INVALID_DECRYPTION_KEY = 5
    INVALID_FORFEIT_SIGNATURE = 6


class OutputError(enum.IntEnum):
    INVALID_CONTRACT = 1
    CONTRACT_EXPIRED = 2


def _refuse(variant: int, reason: str) -> ModuleRefusal:
    return ModuleRefusal(encode(lambda w: w.variant(variant, b"")), reason)


class Lnv2Module:
    """Consensus state of the LNv2 module (contracts, preimages, vetted gateways, block count)."""

    def __init__(self, store: FedimintStore, config: Lnv2ClientConfig, now: Callable[[], int]) -> None:
        self.store = store
        self.config = config
        self._now = now
        self._conn = store.connection
        self._conn.executescript(_SCHEMA)
        self.changed = asyncio.Event()
        """Set (and replaced) whenever state changes, to wake the await_* endpoints."""

    # --- consensus -------------------------------------------------------------------------

    def block_count(self) -> int:
        return int(self.store.get_meta(BLOCK_COUNT_KEY) or 0)

    def set_block_count(self, count: int) -> None:
        self.store.set_meta(BLOCK_COUNT_KEY, str(count))
        self._wake()

    def _row(self, outpoint: OutPoint) -> tuple[int, bytes, str | None, str | None] | None:
        row = self._conn.execute(
            "SELECT incoming, contract_hex, spent_by, preimage_hex FROM lnv2_contracts"
            " WHERE txid=? AND out_idx=?",
            (outpoint.txid.hex(), outpoint.out_idx),
        ).fetchone()
        return None if row is None else (int(row[0]), bytes.fromhex(row[1]), row[2], row[3])

    def check_input(self, data: bytes) -> ItemEffect:
        value = items.input_from_bytes(data)
        if isinstance(value, UnknownVariant):
            raise ModuleRefusal(encode(lambda w: w.variant(0, b"")), "unknown LNv2 input version")
        row = self._row(value.outpoint)
        if row is None or row[2] is not None:
            raise _refuse(InputError.UNKNOWN_CONTRACT, "no unspent LNv2 contract at that out point")
        unique = b"lnv2" + encode(value.outpoint.write)
        if isinstance(value, items.OutgoingInput):
            if row[0]:
                raise _refuse(InputError.UNKNOWN_CONTRACT, "the out point holds an incoming contract")
            contract = OutgoingContract.from_bytes(row[1])
            return self._outgoing(value, contract, unique)
        if not row[0]:
            raise _refuse(InputError.UNKNOWN_CONTRACT, "the out point holds an outgoing contract")
        incoming = IncomingContract.from_bytes(row[1])
        if not incoming.verify_agg_dk(self.config.tpe_agg_pk, value.agg_dk):
            raise _refuse(InputError.INVALID_DECRYPTION_KEY, "the aggregate decryption key is invalid")
        decrypted = incoming.decrypt(value.agg_dk)
        key = incoming.commitment.claim_pk if decrypted is not None else incoming.commitment.refund_pk
        amount = incoming.commitment.amount
        return ItemEffect(amount, self.config.fee.fee(amount), key, unique, self._spend(value.outpoint, None))

    def _outgoing(self, value: items.OutgoingInput, contract: OutgoingContract, unique: bytes) -> ItemEffect:
        witness = value.witness
        preimage: bytes | None = None
        if witness.kind is items.WitnessKind.CLAIM:
            if contract.expiration <= self.block_count():
                raise _refuse(InputError.EXPIRED, "the outgoing contract has expired")
            if not contract.payment_image.matches(witness.data):
                raise _refuse(InputError.INVALID_PREIMAGE, "the preimage does not match")
            key, preimage = contract.claim_pk, witness.data
        elif witness.kind is items.WitnessKind.REFUND:
            if contract.expiration > self.block_count():
                raise _refuse(InputError.NOT_EXPIRED, "the outgoing contract has not expired yet")
            key = contract.refund_pk
        else:
            if not contract.verify_forfeit_signature(witness.data):
                raise _refuse(InputError.INVALID_FORFEIT_SIGNATURE, "the forfeit signature is invalid")
            key = contract.refund_pk
        fee = self.config.fee.fee(contract.amount)
        return ItemEffect(contract.amount, fee, key, unique, self._spend(value.outpoint, preimage))

    def _spend(self, outpoint: OutPoint, preimage: bytes | None) -> Callable[[bytes], None]:
        def apply(txid: bytes) -> None:
            self._conn.execute(
                "UPDATE lnv2_contracts SET spent_by=?, preimage_hex=? WHERE txid=? AND out_idx=?",
                (txid.hex(), preimage.hex() if preimage else None, outpoint.txid.hex(), outpoint.out_idx),
            )
            self._wake()

        return apply

    def check_output(self, data: bytes, txid: bytes, out_idx: int) -> ItemEffect:
        value = items.output_from_bytes(data)
        if isinstance(value, UnknownVariant):
            raise ModuleRefusal(encode(lambda w: w.variant(0, b"")), "unknown LNv2 output version")
        if isinstance(value, IncomingContract):
            if not value.verify():
                raise _refuse(OutputError.INVALID_CONTRACT, "the incoming contract's ciphertext is invalid")
            if value.commitment.expiration <= self._now():
                raise _refuse(OutputError.CONTRACT_EXPIRED, "the incoming contract has expired")
            amount, incoming, raw = value.commitment.amount, 1, value.to_bytes()
        else:
            amount, incoming, raw = value.amount, 0, value.to_bytes()
        contract_id = value.contract_id()

        def apply(_txid: bytes) -> None:
            self._conn.execute(
                "INSERT INTO lnv2_contracts (txid, out_idx, incoming, contract_id, contract_hex)"
                " VALUES (?, ?, ?, ?, ?)",
                (txid.hex(), out_idx, incoming, contract_id.hex(), raw.hex()),
            )
            self._wake()

        return ItemEffect(amount, self.config.fee.fee(amount), b"", b"", apply)

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    # --- queries (the module endpoints) -----------------------------------------------------

    def incoming_outpoint(self, contract_id: bytes) -> OutPoint | None:
        row = self._conn.execute(
            "SELECT txid, out_idx FROM lnv2_contracts WHERE contract_id=? AND incoming=1",
            (contract_id.hex(),),
        ).fetchone()
        return None if row is None else OutPoint(bytes.fromhex(row[0]), int(row[1]))

    def incoming_contract(self, outpoint: OutPoint) -> IncomingContract | None:
        row = self._row(outpoint)
        return IncomingContract.from_bytes(row[1]) if row is not None and row[0] else None

    def preimage(self, outpoint: OutPoint) -> bytes | None:
        row = self._row(outpoint)
        return bytes.fromhex(row[3]) if row is not None and row[3] is not None else None

    def outgoing_expiration(self, outpoint: OutPoint) -> tuple[bytes, int] | None:
        """(contract id, blocks left) of an unspent outgoing contract."""
        row = self._row(outpoint)
        if row is None or row[0] or row[2] is not None:
            return None
        contract = OutgoingContract.from_bytes(row[1])
        return contract.contract_id(), max(0, contract.expiration - self.block_count())

    def gateways(self) -> list[str]:
        return [str(r[0]) for r in self._conn.execute("SELECT url FROM lnv2_gateways ORDER BY url")]

    def add_gateway(self, url: str) -> bool:
        cur = self._conn.execute("INSERT OR IGNORE INTO lnv2_gateways VALUES (?)", (url,))
        return cur.rowcount > 0

    def remove_gateway(self, url: str) -> bool:
        cur = self._conn.execute("DELETE FROM lnv2_gateways WHERE url=?", (url,))
        return cur.rowcount > 0

    def now(self) -> int:
        return self._now()


class Lnv2Guardian:
    """One guardian's tpe secret share: answers decryption key shares of funded contracts."""

    def __init__(self, guardian: MintGuardian, secret: tpe.SecretKeyShare) -> None:
        self.peer_id = guardian.peer_id
        self._guardian = guardian
        self._secret = secret

    def dk_share(self, contract: IncomingContract) -> tpe.DecryptionKeyShare:
        """``pk * sk_i`` for the contract's ciphertext (a byzantine guardian uses ``sk_i + 1``)."""
        if not contract.verify():  # stored contracts were checked; keep the guardian honest anyway
            raise DecodeError("the contract's ciphertext does not verify")
        secret = self._secret
        if self._guardian.fault is FaultMode.BYZANTINE:
            secret = tpe.SecretKeyShare((secret.scalar + 1) % R)
        return tpe.create_dk_share(secret, contract.ciphertext)
