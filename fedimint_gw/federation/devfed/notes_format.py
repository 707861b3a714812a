"""Private: the devfed notes format and the ids the adapters parse (no I/O).

`devfednotes1` + unpadded base64url(JSON) is the devfed wallet's out-of-band ecash string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fedimint_gw.crypto.scalar import N, scalar_to_hex
from fedimint_gw.errors import InvalidInput
from fedimint_gw.federation.ecash import Note, PendingOutput, denominations_for

NOTES_PREFIX = "devfednotes1"
MAX_DENOMINATION = 1 << 40


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


def parse_hash(value: str, what: str = "payment hash") -> str:
    """A 32-byte hex id, lowercased; InvalidInput otherwise."""
    try:
        return _hex(value, 32)
    except ValueError:
        raise InvalidInput(f"{what} must be 32 bytes of hex, got {value!r}") from None


def reissue_inputs(notes: Sequence[Note]) -> list[dict[str, object]]:
    return sorted((n.to_input() for n in notes), key=lambda i: str(i["secret"]))


def double_spent(tx: Mapping[str, Any], message: str) -> list[str]:
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


def spent_elsewhere(message: str, ours: set[str]) -> bool:
    """Whether a `double_spend` refusal names a spending transaction that is not one of `ours`
    (devfed says `inputs[i] note was already spent in <txid>`)."""
    spenders = set(re.findall(r"already spent in ([0-9a-f]{64})", message))
    return bool(spenders - ours)
