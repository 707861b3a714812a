"""Client-side ecash, shared by the adapters: blind outputs, combine guardian shares, notes.

A note of `amount_msat` (a power of two) is (secret, C) with C = k·hash_to_curve(secret),
where k is the federation's mint key for that denomination, Shamir-shared among guardians.
To get notes the gateway adds blinded outputs B_ = Y + r·G to a transaction; each guardian
answers with its share k_i·B_ and a DLEQ proof; any `threshold` verified shares combine to
k·B_, which unblinds to C. Guardians whose shares fail verification are named and skipped.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fedimint_gw.crypto import bdhke
from fedimint_gw.crypto.point import Point
from fedimint_gw.crypto.scalar import random_scalar, scalar_from_hex, scalar_to_hex
from fedimint_gw.crypto.threshold_bdhke import BlindSignatureShare, combine_shares, verify_share
from fedimint_gw.errors import FederationUnreachable


@dataclass(frozen=True)
class Note:
    """A spendable note."""

    amount_msat: int
    secret: str  # 32 bytes hex
    signature: str  # C, 33 bytes hex

    def to_input(self) -> dict[str, object]:
        """The transaction input spending this note."""
        return {"kind": "note", "amount_msat": self.amount_msat, "secret": self.secret, "C": self.signature}


@dataclass(frozen=True)
class PendingOutput:
    """A blinded output waiting for signature shares. Persist it before submitting."""

    amount_msat: int
    secret: str
    blinding_factor: str

    @property
    def blinded(self) -> Point:
        return bdhke.blind(bytes.fromhex(self.secret), scalar_from_hex(self.blinding_factor)).blinded

    def to_output(self) -> dict[str, object]:
        """The transaction output asking for this note."""
        return {"kind": "note", "amount_msat": self.amount_msat, "B_": self.blinded.to_hex()}

    def to_dict(self) -> dict[str, object]:
        return {
            "amount_msat": self.amount_msat,
            "secret": self.secret,
            "blinding_factor": self.blinding_factor,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PendingOutput:
        return cls(int(str(data["amount_msat"])), str(data["secret"]), str(data["blinding_factor"]))


@dataclass(frozen=True)
class MintKeys:
    """The public mint keys: aggregate and per-guardian share (by Shamir index) per denomination."""

    threshold: int
    aggregate: Mapping[int, Point]
    shares: Mapping[int, Mapping[int, Point]]  # denomination -> share index -> K_i


def denominations_for(amount_msat: int) -> list[int]:
    """The powers of two that sum to `amount_msat` (largest first)."""
    if amount_msat < 0:
        raise ValueError("negative amount")
    return [1 << i for i in range(amount_msat.bit_length() - 1, -1, -1) if amount_msat >> i & 1]


def new_outputs(amount_msat: int) -> list[PendingOutput]:
    """Fresh blinded outputs for `amount_msat`, one per set bit."""
    return [
        PendingOutput(d, secrets.token_bytes(32).hex(), scalar_to_hex(random_scalar()))
        for d in denominations_for(amount_msat)
    ]


def select_notes(notes: Sequence[Note], amount_msat: int) -> list[Note]:
    """Notes summing to at least `amount_msat`, exactly where the notes allow, else small change."""
    available = sum(n.amount_msat for n in notes)
    if available < amount_msat:
        raise ValueError(f"notes worth {available} msat cannot cover {amount_msat} msat")
    order = sorted(range(len(notes)), key=lambda i: notes[i].amount_msat, reverse=True)
    chosen: list[int] = []
    remaining = amount_msat
    for i in order:
        if 0 < notes[i].amount_msat <= remaining:
            chosen.append(i)
            remaining -= notes[i].amount_msat
    for i in reversed(order):  # smallest unused notes first, until covered
        if remaining <= 0:
            break
        if i not in chosen and notes[i].amount_msat >= remaining:
            chosen.append(i)
            remaining -= notes[i].amount_msat
    for i in reversed(order):
        if remaining <= 0:
            break
        if i not in chosen:
            chosen.append(i)
            remaining -= notes[i].amount_msat
    total = amount_msat - remaining
    for i in sorted(chosen, key=lambda j: notes[j].amount_msat):  # drop what is not needed
        if total - notes[i].amount_msat >= amount_msat:
            chosen.remove(i)
            total -= notes[i].amount_msat
    return [notes[i] for i in chosen]


def finish_outputs(
    outputs: Sequence[PendingOutput],
    shares_by_guardian: Mapping[int, Sequence[object]],
    keys: MintKeys,
) -> tuple[list[Note], list[int]]:
    """Combine guardians' signature shares into notes.

    `shares_by_guardian` maps a guardian's Shamir index to its list of share objects (one
    per output, in order). Returns the notes and the indices of guardians whose shares
    failed verification. Raises FederationUnreachable if fewer than `threshold` guardians
    gave valid shares for every output.
    """
    good: dict[int, list[BlindSignatureShare]] = {}
    bad: list[int] = []
    for index, raw_shares in shares_by_guardian.items():
        try:
            parsed = [BlindSignatureShare.from_dict(s) for s in raw_shares]
            ok = len(parsed) == len(outputs) and all(
                p.index == index and verify_share(keys.shares[o.amount_msat][index], o.blinded, p)
                for p, o in zip(parsed, outputs, strict=True)
            )
        except Exception:  # malformed share from a guardian: it is misbehaving, not us
            ok = False
        if ok:
            good[index] = parsed
        else:
            bad.append(index)
    if len(good) < keys.threshold:
        raise FederationUnreachable(
            f"only {len(good)} guardian(s) gave valid signature shares, {keys.threshold} needed"
            + (f"; invalid shares from guardian(s) {sorted(bad)}" if bad else "")
        )
    chosen = sorted(good)[: keys.threshold]
    notes: list[Note] = []
    for j, out in enumerate(outputs):
        per_denom = keys.shares[out.amount_msat]
        blind_sig = combine_shares(
            out.blinded, [good[i][j] for i in chosen], {i: per_denom[i] for i in chosen}, keys.threshold
        )
        sig = bdhke.unblind(blind_sig, scalar_from_hex(out.blinding_factor), keys.aggregate[out.amount_msat])
        notes.append(Note(out.amount_msat, out.secret, sig.to_hex()))
    return notes, bad
