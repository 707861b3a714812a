"""Transactions (`fedimint-core/src/transaction.rs`), out points and submission outcomes.

    Transaction { inputs: Vec<DynInput>, outputs: Vec<DynOutput>, nonce: [u8; 8],
                  signatures: TransactionSignature }
    TransactionSignature::NaiveMultisig(Vec<schnorr::Signature>) (variant 0) | Default
    txid = sha256(enc(inputs) || enc(outputs) || nonce)
One BIP-340 Schnorr signature per input key, over the 32-byte txid, in input order.
`DynInput`/`DynOutput` are module dyn values (instance id + length + module encoding); here
they are `ModuleItem`s carrying the module's bytes, which the module's own codec decodes.
Values travel in JSON as `SerdeModuleEncoding<T>`: the hex of the consensus encoding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from coincurve import PrivateKey, PublicKeyXOnly

from fedimint_gw.fedimint.encoding import (
    Err,
    Ok,
    Reader,
    UnknownVariant,
    Writer,
    decode_hex,
    decode_whole,
    encode,
)
from fedimint_gw.fedimint.errors import EncodeError

TXID_LEN = 32
NONCE_LEN = 8
SCHNORR_LEN = 64


@dataclass(frozen=True)
class ModuleItem:
    """One module dyn value (an input, output or outcome): which module, and its encoding."""

    module_instance_id: int
    data: bytes

    def write(self, w: Writer) -> None:
        w.dyn(self.module_instance_id, self.data)

    @classmethod
    def read(cls, r: Reader) -> ModuleItem:
        instance, body = r.dyn()
        return cls(instance, body.read(body.remaining))


@dataclass(frozen=True)
class OutPoint:
    """An output of a transaction: `OutPoint { txid, out_idx: u64 }`."""

    txid: bytes
    out_idx: int

    def write(self, w: Writer) -> None:
        w.fixed(self.txid, TXID_LEN).u64(self.out_idx)

    @classmethod
    def read(cls, r: Reader) -> OutPoint:
        return cls(r.fixed(TXID_LEN), r.u64())

    def to_json(self) -> dict[str, object]:
        """serde form: {"txid": hex, "out_idx": n}."""
        return {"txid": self.txid.hex(), "out_idx": self.out_idx}


def tx_hash(inputs: Sequence[ModuleItem], outputs: Sequence[ModuleItem], nonce: bytes) -> bytes:
    """The txid: sha256 over the encoded inputs, outputs and nonce (signatures excluded)."""

    def build(w: Writer) -> None:
        w.vec(inputs, lambda ww, i: i.write(ww))
        w.vec(outputs, lambda ww, o: o.write(ww))
        w.fixed(nonce, NONCE_LEN)

    return hashlib.sha256(encode(build)).digest()


@dataclass(frozen=True)
class Transaction:
    """A transaction; `signatures` is the NaiveMultisig list, or an unknown scheme kept raw."""

    inputs: tuple[ModuleItem, ...]
    outputs: tuple[ModuleItem, ...]
    nonce: bytes
    signatures: tuple[bytes, ...] | UnknownVariant

    @classmethod
    def signed(
        cls,
        inputs: Sequence[ModuleItem],
        outputs: Sequence[ModuleItem],
        nonce: bytes,
        secret_keys: Sequence[bytes],
    ) -> Transaction:
        """Sign the txid with each input's 32-byte secret key, in input order (BIP-340)."""
        txid = tx_hash(inputs, outputs, nonce)
        sigs = tuple(PrivateKey(key).sign_schnorr(txid) for key in secret_keys)
        return cls(tuple(inputs), tuple(outputs), nonce, sigs)

    def txid(self) -> bytes:
        return tx_hash(self.inputs, self.outputs, self.nonce)

    def signatures_valid(self, public_keys: Sequence[bytes]) -> bool:
        """Upstream `validate_signatures`: one valid signature per input key (33-byte keys)."""
        if isinstance(self.signatures, UnknownVariant) or len(public_keys) != len(self.signatures):
            return False
        txid = self.txid()
        for key, sig in zip(public_keys, self.signatures, strict=True):
            try:
                if not PublicKeyXOnly(key[1:]).verify(sig, txid):
                    return False
            except (ValueError, TypeError):
                return False
        return True

    def write(self, w: Writer) -> None:
        w.vec(self.inputs, lambda ww, i: i.write(ww))
        w.vec(self.outputs, lambda ww, o: o.write(ww))
        w.fixed(self.nonce, NONCE_LEN)
        if isinstance(self.signatures, UnknownVariant):
            w.unknown(self.signatures)
        else:
            sigs = self.signatures
            w.variant(0, encode(lambda b: b.vec(sigs, lambda ww, s: ww.fixed(s, SCHNORR_LEN))))

    @classmethod
    def read(cls, r: Reader) -> Transaction:
        inputs = r.vec(ModuleItem.read)
        outputs = r.vec(ModuleItem.read)
        nonce = r.fixed(NONCE_LEN)
        sigs = r.enum({0: lambda b: b.vec(lambda x: x.fixed(SCHNORR_LEN))})
        return cls(inputs, outputs, nonce, sigs)

    def to_bytes(self) -> bytes:
        return encode(self.write)

    def to_hex(self) -> str:
        """`SerdeTransaction`: what `submit_transaction` takes as params."""
        return self.to_bytes().hex()

    @classmethod
    def from_bytes(cls, data: bytes) -> Transaction:
        return decode_whole(data, cls.read)

    @classmethod
    def from_hex(cls, text: str) -> Transaction:
        return decode_hex(text, cls.read)


@dataclass(frozen=True)
class TransactionError:
    """Why a federation refused a transaction: the `TransactionError` variant and its body.

    Variants (upstream order): 0 UnbalancedTransaction{inputs, outputs, fee: Amount},
    1 InvalidSignature{tx, hash, sig, key: String}, 2 UnsupportedSignatureScheme{variant: u64},
    3 InvalidWitnessLength, 4 Input(DynInputError), 5 Output(DynOutputError).
    """

    variant: int
    data: bytes

    @classmethod
    def unbalanced(cls, inputs: int, outputs: int, fee: int) -> TransactionError:
        return cls(0, encode(lambda w: w.u64(inputs).u64(outputs).u64(fee)))

    @classmethod
    def invalid_signature(cls, tx: str, hash_: str, sig: str, key: str) -> TransactionError:
        return cls(1, encode(lambda w: w.string(tx).string(hash_).string(sig).string(key)))

    @classmethod
    def invalid_witness_length(cls) -> TransactionError:
        return cls(3, b"")

    @classmethod
    def input_error(cls, module_instance_id: int, inner: bytes) -> TransactionError:
        """A module's own input error (its encoding, wrapped as a dyn value)."""
        return cls(4, encode(lambda w: w.dyn(module_instance_id, inner)))

    @classmethod
    def output_error(cls, module_instance_id: int, inner: bytes) -> TransactionError:
        return cls(5, encode(lambda w: w.dyn(module_instance_id, inner)))

    def describe(self) -> str:
        """A short human-readable reason."""
        names = {
            0: "the transaction is unbalanced",
            1: "a transaction signature is invalid",
            2: "the signature scheme is not supported",
            3: "the transaction has the wrong number of signatures",
            4: "an input was refused by its module",
            5: "an output was refused by its module",
        }
        return names.get(self.variant, f"unknown transaction error {self.variant}")

    def write(self, w: Writer) -> None:
        w.variant(self.variant, self.data)

    @classmethod
    def read(cls, r: Reader) -> TransactionError:
        value = r.enum({})
        if not isinstance(value, UnknownVariant):  # pragma: no cover - no handlers given
            raise EncodeError("unreachable")
        return cls(value.variant, value.data)


@dataclass(frozen=True)
class TransactionSubmissionOutcome:
    """`TransactionSubmissionOutcome(Result<TransactionId, TransactionError>)`."""

    result: Ok[bytes] | Err[TransactionError]

    @property
    def accepted(self) -> bool:
        return isinstance(self.result, Ok)

    def write(self, w: Writer) -> None:
        w.result(self.result, lambda ww, txid: ww.fixed(txid, TXID_LEN), lambda ww, e: e.write(ww))

    @classmethod
    def read(cls, r: Reader) -> TransactionSubmissionOutcome:
        return cls(r.result(lambda x: x.fixed(TXID_LEN), TransactionError.read))

    def to_hex(self) -> str:
        return encode(self.write).hex()

    @classmethod
    def from_hex(cls, text: str) -> TransactionSubmissionOutcome:
        return decode_hex(text, cls.read)
