"""secp256k1 keys and BIP-340 signatures as LNv2 carries them (33-byte keys, 64-byte signatures)."""

from __future__ import annotations

from coincurve import PrivateKey, PublicKey, PublicKeyXOnly

from fedimint_gw.fedimint.errors import DecodeError

PUBKEY_LEN = 33
SIGNATURE_LEN = 64
HASH_LEN = 32


def check_pubkey(data: bytes, what: str) -> bytes:
    """A valid compressed secp256k1 public key (33 bytes), else :class:`DecodeError`."""
    if len(data) != PUBKEY_LEN or data[0] not in (2, 3):
        raise DecodeError(f"{what} must be a 33-byte compressed public key")
    try:
        PublicKey(bytes(data))
    except (ValueError, TypeError):
        raise DecodeError(f"{what} is not a point on secp256k1") from None
    return bytes(data)


def public_key_of(secret_key: bytes) -> bytes:
    """The compressed public key of a 32-byte secret key."""
    return bytes(PrivateKey(secret_key).public_key.format(compressed=True))


def sign_schnorr(secret_key: bytes, message: bytes) -> bytes:
    """A BIP-340 signature over a 32-byte message."""
    if len(message) != HASH_LEN:
        raise ValueError("a Schnorr message is 32 bytes")
    return bytes(PrivateKey(secret_key).sign_schnorr(message))


def verify_schnorr(pubkey: bytes, message: bytes, signature: bytes) -> bool:
    """BIP-340 check by the x-only part of a compressed key; malformed input is simply False."""
    if len(pubkey) != PUBKEY_LEN or len(signature) != SIGNATURE_LEN or len(message) != HASH_LEN:
        return False
    try:
        return bool(PublicKeyXOnly(bytes(pubkey[1:])).verify(bytes(signature), bytes(message)))
    except (ValueError, TypeError):
        return False
