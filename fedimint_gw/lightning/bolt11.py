"""BOLT #11 invoices: our own encoder and decoder.

Encoding is split so that either we or Core Lightning can sign:

    unsigned = encode_unsigned(content)
    invstr = sign_with_key(unsigned, privkey)  # sign with a key we hold, or
    draft = encode_for_signinvoice(unsigned)  # hand to CLN's `signinvoice`

`decode` verifies the bech32 checksum and the signature and recovers the payee.
Every malformed input raises `Bolt11Error`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from bech32 import CHARSET
from coincurve import PrivateKey, PublicKey

from fedimint_gw.domain.amount import MAX_MSAT

from . import _bech32_words as b32

# Feature numbers (BOLT #9): the even bit is compulsory, the next odd bit optional.
VAR_ONION_OPTIN = 8
PAYMENT_SECRET = 14
BASIC_MPP = 16
# What CLN puts in its invoices: var_onion_optin and payment_secret compulsory, basic_mpp optional.
DEFAULT_FEATURES = (1 << VAR_ONION_OPTIN) | (1 << PAYMENT_SECRET) | (1 << (BASIC_MPP + 1))
KNOWN_FEATURE_BITS = frozenset({8, 9, 14, 15, 16, 17})
CURRENCIES = frozenset({"bc", "tb", "tbs", "bcrt", "sb"})
DEFAULT_EXPIRY = 3600
DEFAULT_MIN_FINAL_CLTV_EXPIRY = 18

_TAG = {c: CHARSET.index(c) for c in "psdhnxcr9"}
_FIXED_WORDS = {_TAG["p"]: 52, _TAG["s"]: 52, _TAG["h"]: 52, _TAG["n"]: 53}
_SINGLE_TAGS = frozenset(_TAG[c] for c in "psdhnxc9")
_TIMESTAMP_WORDS = 7
_SIGNATURE_WORDS = 104
_MAX_FIELD_WORDS = 1023
_MAX_FIELD_BYTES = _MAX_FIELD_WORDS * 5 // 8
_HOP = struct.Struct(">33sQIIH")  # pubkey, short_channel_id, fee_base, fee_proportional, cltv_delta
# Multipliers in pico-bitcoin; one millisatoshi is 10 pico-bitcoin. Largest first.
_PICO_PER_UNIT = (("", 10**12), ("m", 10**9), ("u", 10**6), ("n", 10**3), ("p", 1))
_HRP_RE = re.compile(r"ln([a-z]+)(.*)")
_AMOUNT_RE = re.compile(r"([1-9][0-9]*)([munp]?)")


class Bolt11Error(ValueError):
    """A BOLT #11 invoice is malformed, fails verification, or cannot be encoded."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise Bolt11Error(message)


def _check_uint(value: int, bits: int, name: str) -> None:
    _check(isinstance(value, int) and not isinstance(value, bool), f"{name} must be an integer")
    _check(0 <= value < 1 << bits, f"{name} out of range (0 to 2^{bits}-1): {value}")


def feature_bits(*, required: Iterable[int] = (), optional: Iterable[int] = ()) -> int:
    """Build a feature bit field from even feature numbers such as `PAYMENT_SECRET`."""
    bits = 0
    for feature, offset in [(f, 0) for f in required] + [(f, 1) for f in optional]:
        _check(feature >= 0 and feature % 2 == 0, f"feature numbers are even, got {feature}")
        bits |= 1 << (feature + offset)
    return bits


def has_feature(features: int, feature: int) -> bool:
    """Whether `features` sets the even feature number `feature` as compulsory or optional."""
    return bool(features >> feature & 0b11)


@dataclass(frozen=True)
class RouteHop:
    """One hop of an `r` route hint: the channel from `pubkey` towards the payee."""

    pubkey: bytes
    short_channel_id: int
    fee_base_msat: int
    fee_proportional_millionths: int
    cltv_expiry_delta: int

    def __post_init__(self) -> None:
        _check(isinstance(self.pubkey, bytes) and len(self.pubkey) == 33, "hop pubkey must be 33 bytes")
        _check_uint(self.short_channel_id, 64, "short_channel_id")
        _check_uint(self.fee_base_msat, 32, "fee_base_msat")
        _check_uint(self.fee_proportional_millionths, 32, "fee_proportional_millionths")
        _check_uint(self.cltv_expiry_delta, 16, "cltv_expiry_delta")

    def to_bytes(self) -> bytes:
        """The 51-byte wire form of this hop."""
        return _HOP.pack(*dataclasses.astuple(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> RouteHop:
        """Parse the 51-byte wire form of a hop."""
        _check(len(raw) == _HOP.size, f"a route hop is {_HOP.size} bytes, got {len(raw)}")
        return cls(*_HOP.unpack(raw))


@dataclass(frozen=True)
class TaggedField:
    """A tagged field kept as raw 5-bit words: unknown types, `f` fallbacks, skipped fields."""

    tag: int
    data: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_uint(self.tag, 5, "field tag")
        _check(all(0 <= w < 32 for w in self.data), "field data must be 5-bit words")
        _check(len(self.data) <= _MAX_FIELD_WORDS, f"field data longer than {_MAX_FIELD_WORDS} words")

    @property
    def letter(self) -> str:
        """The bech32 character naming this field's type, e.g. 'f'."""
        return CHARSET[self.tag]


@dataclass(frozen=True, kw_only=True)
class InvoiceContent:
    """Everything an invoice says, before it is signed."""

    currency: str
    amount_msat: int | None
    timestamp: int
    payment_hash: bytes
    payment_secret: bytes | None = None
    description: str | None = None
    description_hash: bytes | None = None
    expiry: int = DEFAULT_EXPIRY
    min_final_cltv_expiry: int = DEFAULT_MIN_FINAL_CLTV_EXPIRY
    features: int = 0
    route_hints: tuple[tuple[RouteHop, ...], ...] = ()
    extra_fields: tuple[TaggedField, ...] = ()

    def __post_init__(self) -> None:
        _check(self.currency in CURRENCIES, f"unknown currency prefix {self.currency!r}")
        if self.amount_msat is not None:
            _check_uint(self.amount_msat, 64, "amount_msat")
            _check(self.amount_msat > 0, "amount_msat must be positive (use None for any amount)")
        _check_uint(self.timestamp, 35, "timestamp")
        _check(_is_bytes(self.payment_hash, 32), "payment_hash must be 32 bytes")
        _check(_is_bytes(self.payment_secret, 32, none_ok=True), "payment_secret must be 32 bytes")
        _check((self.description is None) != (self.description_hash is None), "need exactly one of d and h")
        if self.description is not None:
            _check(len(self.description.encode()) <= _MAX_FIELD_BYTES, "description too long: use h")
        _check(_is_bytes(self.description_hash, 32, none_ok=True), "description_hash must be 32 bytes")
        _check_uint(self.expiry, 64, "expiry")
        _check_uint(self.min_final_cltv_expiry, 64, "min_final_cltv_expiry")
        _check_uint(self.features, _MAX_FIELD_WORDS * 5, "features")
        if has_feature(self.features, PAYMENT_SECRET):
            _check(self.payment_secret is not None, "payment_secret feature set but no payment_secret")
            _check(has_feature(self.features, VAR_ONION_OPTIN), "payment_secret needs var_onion_optin")
        if has_feature(self.features, BASIC_MPP):
            _check(has_feature(self.features, PAYMENT_SECRET), "basic_mpp needs payment_secret")
        for route in self.route_hints:
            _check(0 < len(route) <= _MAX_FIELD_BYTES // _HOP.size, "a route hint needs 1 to 12 hops")
            _check(all(isinstance(hop, RouteHop) for hop in route), "route hints must hold RouteHops")
        _check(all(isinstance(f, TaggedField) for f in self.extra_fields), "extra_fields: TaggedFields only")


@dataclass(frozen=True, kw_only=True)
class Invoice(InvoiceContent):
    """A decoded, signature-checked invoice."""

    payee: bytes
    signature: bytes  # 64-byte compact signature then the recovery id

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(_is_bytes(self.payee, 33), "payee must be a 33-byte node id")
        _check(_is_bytes(self.signature, 65), "signature must be 65 bytes")

    @property
    def expires_at(self) -> int:
        """Unix time at which the invoice expires."""
        return self.timestamp + self.expiry

    def is_expired(self, now: int) -> bool:
        """Whether the invoice has expired at unix time `now` (expired from `expires_at` on)."""
        return now >= self.expires_at


@dataclass(frozen=True)
class UnsignedInvoice:
    """The human-readable part and the 5-bit data words that a signature covers."""

    hrp: str
    data: tuple[int, ...]
    payee_field: bytes | None = None

    def signing_message(self) -> bytes:
        """The hrp bytes followed by the data bits zero-padded to a byte boundary."""
        return self.hrp.encode("ascii") + b32.words_to_bytes(self.data, pad=True)

    def sighash(self) -> bytes:
        """SHA256 of `signing_message()`: the 32-byte digest that gets signed."""
        return hashlib.sha256(self.signing_message()).digest()


def encode_unsigned(
    content: InvoiceContent, *, payee_field: bytes | None = None, include_default_c: bool = True
) -> UnsignedInvoice:
    """Encode `content` into the hrp and data words to sign.

    Fields are written in the order p, d, h, s, x, c, r..., 9, n, then `extra_fields`.
    `x` is omitted when it is the default 3600; `c` is omitted when it is the default 18 only
    if `include_default_c` is false (some old readers assumed a smaller default). `n` is written
    if `payee_field` is given, which must then be the signer's node id.
    """
    data = b32.int_to_words(content.timestamp, _TIMESTAMP_WORDS)
    data += _field("p", b32.bytes_to_words(content.payment_hash))
    if content.description is not None:
        data += _field("d", b32.bytes_to_words(content.description.encode()))
    if content.description_hash is not None:
        data += _field("h", b32.bytes_to_words(content.description_hash))
    if content.payment_secret is not None:
        data += _field("s", b32.bytes_to_words(content.payment_secret))
    if content.expiry != DEFAULT_EXPIRY:
        data += _field("x", b32.int_to_words(content.expiry))
    if include_default_c or content.min_final_cltv_expiry != DEFAULT_MIN_FINAL_CLTV_EXPIRY:
        data += _field("c", b32.int_to_words(content.min_final_cltv_expiry))
    for route in content.route_hints:
        data += _field("r", b32.bytes_to_words(b"".join(hop.to_bytes() for hop in route)))
    if content.features:
        data += _field("9", b32.int_to_words(content.features))
    if payee_field is not None:
        _check(_is_bytes(payee_field, 33), "payee_field must be a 33-byte node id")
        data += _field("n", b32.bytes_to_words(payee_field))
    for extra in content.extra_fields:
        data += [extra.tag, *divmod(len(extra.data), 32), *extra.data]
    hrp = "ln" + content.currency + _encode_amount(content.amount_msat)
    return UnsignedInvoice(hrp, tuple(data), payee_field)


def attach_signature(unsigned: UnsignedInvoice, signature: bytes) -> str:
    """Complete the invoice string with a 65-byte signature (compact r||s, then recovery id)."""
    _check(_is_bytes(signature, 65) and signature[64] <= 3, "need a 65-byte recoverable signature")
    return b32.bech32_join(unsigned.hrp, [*unsigned.data, *b32.bytes_to_words(signature)])


def sign_with_key(unsigned: UnsignedInvoice, privkey: PrivateKey) -> str:
    """Sign with `privkey` (deterministic RFC 6979) and return the complete invoice string."""
    if unsigned.payee_field is not None:
        _check(
            privkey.public_key.format() == unsigned.payee_field, "n field is not the signing key's node id"
        )
    return attach_signature(unsigned, privkey.sign_recoverable(unsigned.sighash(), hasher=None))


def encode_for_signinvoice(unsigned: UnsignedInvoice) -> str:
    """The invoice with an all-zero 520-bit signature placeholder, as CLN's `signinvoice` expects."""
    return b32.bech32_join(unsigned.hrp, [*unsigned.data, *([0] * _SIGNATURE_WORDS)])


def decode(invstr: str, *, known_features: frozenset[int] = KNOWN_FEATURE_BITS) -> Invoice:
    """Decode and verify an invoice string.

    Checks the checksum, the hrp (currency and amount) and the signature (against the `n`
    field if present, else by recovery), and refuses unknown even feature bits not in
    `known_features`. Unknown fields, `f` fallbacks, later duplicates of single-use fields and
    fixed-size fields of the wrong length are skipped, kept in `extra_fields`.
    """
    try:
        hrp, words = b32.bech32_split(invstr)
    except b32.Bech32FormatError as exc:
        raise Bolt11Error(f"invoice is not valid bech32: {exc}") from exc
    currency, amount_msat = _parse_hrp(hrp)
    _check(len(words) >= _TIMESTAMP_WORDS + _SIGNATURE_WORDS, "invoice too short for timestamp and signature")
    body, signature = words[:-_SIGNATURE_WORDS], b32.words_to_bytes(words[-_SIGNATURE_WORDS:], pad=False)
    first: dict[int, list[int]] = {}
    routes: list[tuple[RouteHop, ...]] = []
    extras: list[TaggedField] = []
    for tag, data in _split_fields(body[_TIMESTAMP_WORDS:]):
        if tag in _SINGLE_TAGS and tag not in first and _FIXED_WORDS.get(tag, len(data)) == len(data):
            first[tag] = data
        elif tag == _TAG["r"]:
            routes.append(_parse_route(data))
        else:
            extras.append(TaggedField(tag, tuple(data)))
    _check(_TAG["p"] in first, "missing payment hash (p field)")
    features = b32.words_to_int(first.get(_TAG["9"], []))
    unknown_even = [
        b for b in range(0, features.bit_length(), 2) if features >> b & 1 and b not in known_features
    ]
    _check(not unknown_even, f"unknown compulsory feature bits {unknown_even}")
    description = None
    if _TAG["d"] in first:
        try:
            description = b32.words_to_bytes(first[_TAG["d"]], pad=False).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Bolt11Error("description (d field) is not valid UTF-8") from exc
    payee_field = _optional_bytes(first, "n")
    digest = UnsignedInvoice(hrp, tuple(body)).sighash()
    return Invoice(
        currency=currency,
        amount_msat=amount_msat,
        timestamp=b32.words_to_int(body[:_TIMESTAMP_WORDS]),
        payment_hash=b32.words_to_bytes(first[_TAG["p"]], pad=False),
        payment_secret=_optional_bytes(first, "s"),
        description=description,
        description_hash=_optional_bytes(first, "h"),
        expiry=_optional_int(first, "x", DEFAULT_EXPIRY),
        min_final_cltv_expiry=_optional_int(first, "c", DEFAULT_MIN_FINAL_CLTV_EXPIRY),
        features=features,
        route_hints=tuple(routes),
        extra_fields=tuple(extras),
        payee=_verify_signature(signature, digest, payee_field),
        signature=signature,
    )


def _is_bytes(value: object, length: int, *, none_ok: bool = False) -> bool:
    return (value is None and none_ok) or (isinstance(value, bytes) and len(value) == length)


def _field(letter: str, words: list[int]) -> list[int]:
    _check(len(words) <= _MAX_FIELD_WORDS, f"{letter} field too long: {len(words)} words")
    return [_TAG[letter], len(words) >> 5, len(words) & 31, *words]


def _encode_amount(amount_msat: int | None) -> str:
    if amount_msat is None:
        return ""
    pico = amount_msat * 10  # the first (largest) multiplier that divides exactly gives the fewest digits
    return next(f"{pico // per}{letter}" for letter, per in _PICO_PER_UNIT if pico % per == 0)


def _parse_hrp(hrp: str) -> tuple[str, int | None]:
    match = _HRP_RE.fullmatch(hrp)
    if match is None:
        raise Bolt11Error(f"human-readable part {hrp!r} does not start with 'ln' and a currency")
    currency, amount = match.groups()
    _check(currency in CURRENCIES, f"unknown currency prefix {currency!r}")
    if not amount:
        return currency, None
    parsed = _AMOUNT_RE.fullmatch(amount)
    if parsed is None:
        raise Bolt11Error(f"invalid amount {amount!r} (digits without leading zeros, then m, u, n or p)")
    digits, letter = parsed.groups()
    pico = int(digits) * dict(_PICO_PER_UNIT)[letter]
    _check(pico % 10 == 0, f"amount {amount!r} is not a whole number of millisatoshi")
    _check(pico // 10 <= MAX_MSAT, f"amount {amount!r} is more than 21 million bitcoin")
    return currency, pico // 10


def _split_fields(words: Sequence[int]) -> Iterator[tuple[int, list[int]]]:
    pos = 0
    while pos < len(words):
        _check(pos + 3 <= len(words), "truncated tagged field header")
        tag, length = words[pos], words[pos + 1] * 32 + words[pos + 2]
        _check(pos + 3 + length <= len(words), f"tagged field {CHARSET[tag]!r} runs past the signature")
        yield tag, list(words[pos + 3 : pos + 3 + length])
        pos += 3 + length


def _parse_route(words: list[int]) -> tuple[RouteHop, ...]:
    raw = b32.words_to_bytes(words, pad=False)
    _check(len(raw) > 0 and len(raw) % _HOP.size == 0, f"r field of {len(raw)} bytes is not whole hops")
    return tuple(RouteHop.from_bytes(raw[i : i + _HOP.size]) for i in range(0, len(raw), _HOP.size))


def _optional_bytes(first: dict[int, list[int]], letter: str) -> bytes | None:
    words = first.get(_TAG[letter])
    return None if words is None else b32.words_to_bytes(words, pad=False)


def _optional_int(first: dict[int, list[int]], letter: str, default: int) -> int:
    words = first.get(_TAG[letter])
    return default if words is None else b32.words_to_int(words)


def _recover(signature: bytes, digest: bytes) -> bytes | None:
    try:
        key: PublicKey = PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except ValueError:
        return None
    return key.format()


def _verify_signature(signature: bytes, digest: bytes, payee_field: bytes | None) -> bytes:
    """The payee's node id: the `n` field if the signature is valid for it, else the recovered key."""
    _check(signature[64] <= 3, f"invalid signature recovery id {signature[64]}")
    if payee_field is None:
        recovered = _recover(signature, digest)
        if recovered is None:
            raise Bolt11Error("signature is not recoverable")
        return recovered
    # The n field is authoritative: the signature is valid for it if any recovery id yields it.
    valid = any(_recover(signature[:64] + bytes([recid]), digest) == payee_field for recid in range(4))
    _check(valid, "signature does not match the payee in the n field")
    return payee_field
