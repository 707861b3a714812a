"""LNv1 contracts (`fedimint-ln-common/src/contracts`), in their consensus encoding.

    OutgoingContract { hash: [u8; 32], gateway_key: PublicKey (33), timelock: u32,
                       user_key: PublicKey (33), cancelled: bool }
    IncomingContract { hash, encrypted_preimage: Vec<u8> (threshold_crypto ciphertext),
                       decrypted_preimage: DecryptedPreimage, gateway_key: PublicKey (33) }
    IncomingContractOffer { amount: Amount, hash, encrypted_preimage, expiry_time: Option<u64> }
    Contract = Incoming(0) | Outgoing(1); FundedContract = Incoming(FundedIncomingContract
               { contract, out_point }) (0) | Outgoing(1)
    DecryptedPreimage = Pending(0) | Some(PreimageKey [u8; 33]) (1) | Invalid(2)
    ContractAccount { amount, contract: FundedContract }

Contract ids: an incoming contract's id is its payment hash (so is an offer's id); an outgoing
contract's id is sha256 of the encoding of every field but `cancelled`. A cancellation is signed
(BIP-340, by the gateway key) over sha256(enc(b"outgoing contract cancellation" as Vec<u8>) || id).

The preimage of an incoming contract is sha256 of the 33-byte preimage key the user encrypted;
the payment hash is sha256 of that preimage. The key is also the public key the user signs with
to claim the funded contract.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from fedimint_gw.fedimint.encoding import Reader, Writer, decode_whole, encode
from fedimint_gw.fedimint.transaction import OutPoint

HASH_LEN = 32
PUBKEY_LEN = 33
PREIMAGE_KEY_LEN = 33
SCHNORR_LEN = 64
CANCELLATION_TAG = b"outgoing contract cancellation"


def preimage_of_key(preimage_key: bytes) -> bytes:
    """The Lightning preimage an incoming contract's decrypted key stands for."""
    return hashlib.sha256(preimage_key).digest()


def payment_hash_of_key(preimage_key: bytes) -> bytes:
    """sha256(sha256(key)): the payment hash an offer for this key must name."""
    return hashlib.sha256(preimage_of_key(preimage_key)).digest()


@dataclass(frozen=True)
class OutgoingContract:
    """Funds the gateway claims with the preimage before `timelock`; after it the user refunds."""

    hash: bytes
    gateway_key: bytes
    timelock: int
    user_key: bytes
    cancelled: bool = False

    def write(self, w: Writer) -> None:
        self._write_id_fields(w)
        w.boolean(self.cancelled)

    def _write_id_fields(self, w: Writer) -> None:
        w.fixed(self.hash, HASH_LEN).fixed(self.gateway_key, PUBKEY_LEN)
        w.u32(self.timelock).fixed(self.user_key, PUBKEY_LEN)

    @classmethod
    def read(cls, r: Reader) -> OutgoingContract:
        return cls(r.fixed(HASH_LEN), r.fixed(PUBKEY_LEN), r.u32(), r.fixed(PUBKEY_LEN), r.boolean())

    def contract_id(self) -> bytes:
        """sha256 over every field but `cancelled`."""
        return hashlib.sha256(encode(self._write_id_fields)).digest()

    def cancellation_message(self) -> bytes:
        """What the gateway signs to cancel (sha256 of the tag as a byte vector and the id)."""
        return hashlib.sha256(
            encode(lambda w: w.byte_vec(CANCELLATION_TAG).fixed(self.contract_id(), 32))
        ).digest()

    def to_json(self) -> dict[str, object]:
        """serde form (as the official client accepted it)."""
        return {
            "hash": self.hash.hex(),
            "gateway_key": self.gateway_key.hex(),
            "timelock": self.timelock,
            "user_key": self.user_key.hex(),
            "cancelled": self.cancelled,
        }


class PreimageState(enum.Enum):
    """Where the guardians' decryption of an incoming contract's preimage key stands."""

    PENDING = 0
    SOME = 1
    INVALID = 2


@dataclass(frozen=True)
class DecryptedPreimage:
    """`DecryptedPreimage`: `key` is set exactly when `state` is SOME."""

    state: PreimageState
    key: bytes = b""

    def __post_init__(self) -> None:
        if (self.state is PreimageState.SOME) != (len(self.key) == PREIMAGE_KEY_LEN):
            raise ValueError("a decrypted preimage carries a 33-byte key exactly when it is Some")

    def write(self, w: Writer) -> None:
        body = encode(lambda b: b.fixed(self.key, PREIMAGE_KEY_LEN)) if self.key else b""
        w.variant(self.state.value, body)

    @classmethod
    def read(cls, r: Reader) -> DecryptedPreimage:
        return r.strict_enum(
            {
                0: lambda _b: cls(PreimageState.PENDING),
                1: lambda b: cls(PreimageState.SOME, b.fixed(PREIMAGE_KEY_LEN)),
                2: lambda _b: cls(PreimageState.INVALID),
            },
            "DecryptedPreimage",
        )

    def to_json(self) -> object:
        """serde form: "Pending" | {"Some": [33 byte values]} | "Invalid" (`PreimageKey` is a
        serde big array: a JSON array of numbers)."""
        if self.state is PreimageState.SOME:
            return {"Some": list(self.key)}
        return "Pending" if self.state is PreimageState.PENDING else "Invalid"


@dataclass(frozen=True)
class IncomingContractOffer:
    """A user's offer to sell the preimage of `hash` for `amount` msat."""

    amount: int
    hash: bytes
    encrypted_preimage: bytes
    expiry_time: int | None = None

    def write(self, w: Writer) -> None:
        w.u64(self.amount).fixed(self.hash, HASH_LEN).byte_vec(self.encrypted_preimage)
        w.option(self.expiry_time, Writer.u64)

    @classmethod
    def read(cls, r: Reader) -> IncomingContractOffer:
        return cls(r.u64(), r.fixed(HASH_LEN), r.byte_vec(), r.option(Reader.u64))

    def offer_id(self) -> bytes:
        return self.hash

    def to_bytes(self) -> bytes:
        return encode(self.write)

    @classmethod
    def from_bytes(cls, data: bytes) -> IncomingContractOffer:
        return decode_whole(data, cls.read)


@dataclass(frozen=True)
class IncomingContract:
    """The gateway's funding of an offer: decryption starts once it is accepted."""

    hash: bytes
    encrypted_preimage: bytes
    decrypted_preimage: DecryptedPreimage
    gateway_key: bytes

    def write(self, w: Writer) -> None:
        w.fixed(self.hash, HASH_LEN).byte_vec(self.encrypted_preimage)
        self.decrypted_preimage.write(w)
        w.fixed(self.gateway_key, PUBKEY_LEN)

    @classmethod
    def read(cls, r: Reader) -> IncomingContract:
        return cls(r.fixed(HASH_LEN), r.byte_vec(), DecryptedPreimage.read(r), r.fixed(PUBKEY_LEN))

    def contract_id(self) -> bytes:
        return self.hash


Contract = IncomingContract | OutgoingContract

G1_LEN = 48
G2_LEN = 96


def ciphertext_json(raw: bytes) -> list[list[int]]:
    """threshold_crypto's serde form of a ciphertext (U, V, W) from its bytes U || W || V: a
    3-tuple of byte arrays, the points compressed (JSON arrays of numbers)."""
    u, w, v = raw[:G1_LEN], raw[G1_LEN : G1_LEN + G2_LEN], raw[G1_LEN + G2_LEN :]
    return [list(u), list(v), list(w)]


def contract_id(contract: Contract) -> bytes:
    return contract.contract_id()


def write_contract(w: Writer, contract: Contract) -> None:
    index = 0 if isinstance(contract, IncomingContract) else 1
    w.variant(index, encode(contract.write))


def _read_incoming(r: Reader) -> Contract:
    return IncomingContract.read(r)


def _read_outgoing(r: Reader) -> Contract:
    return OutgoingContract.read(r)


def read_contract(r: Reader) -> Contract:
    return r.strict_enum({0: _read_incoming, 1: _read_outgoing}, "Contract")


@dataclass(frozen=True)
class FundedIncoming:
    """`FundedIncomingContract`: the contract and the out point that funded it."""

    contract: IncomingContract
    out_point: OutPoint


FundedContract = FundedIncoming | OutgoingContract


@dataclass(frozen=True)
class ContractAccount:
    """A funded contract and what is left in it."""

    amount: int
    contract: FundedContract

    @property
    def contract_id(self) -> bytes:
        inner = self.contract.contract if isinstance(self.contract, FundedIncoming) else self.contract
        return inner.contract_id()

    def write(self, w: Writer) -> None:
        w.u64(self.amount)
        c = self.contract
        if isinstance(c, FundedIncoming):

            def incoming(b: Writer) -> None:
                c.contract.write(b)
                c.out_point.write(b)

            w.variant(0, encode(incoming))
        else:
            w.variant(1, encode(c.write))

    @classmethod
    def read(cls, r: Reader) -> ContractAccount:
        amount = r.u64()

        def incoming(b: Reader) -> FundedContract:
            return FundedIncoming(IncomingContract.read(b), OutPoint.read(b))

        def outgoing(b: Reader) -> FundedContract:
            return OutgoingContract.read(b)

        funded = r.strict_enum({0: incoming, 1: outgoing}, "FundedContract")
        return cls(amount, funded)

    def to_json(self) -> dict[str, object]:
        """serde form, as the official client accepted it (docs/official-client.md)."""
        c = self.contract
        if isinstance(c, OutgoingContract):
            return {"amount": self.amount, "contract": {"Outgoing": c.to_json()}}
        inner = {
            "hash": c.contract.hash.hex(),
            "encrypted_preimage": ciphertext_json(c.contract.encrypted_preimage),
            "decrypted_preimage": c.contract.decrypted_preimage.to_json(),
            "gateway_key": c.contract.gateway_key.hex(),
        }
        return {
            "amount": self.amount,
            "contract": {"Incoming": {"contract": inner, "out_point": c.out_point.to_json()}},
        }
