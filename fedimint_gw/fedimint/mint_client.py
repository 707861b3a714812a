"""The mint module's client logic: note secrets, outputs, share combination, inputs, reissues.

Pure protocol code (no I/O, no storage): the note store and the adapters persist and submit.

- **Tiers.** Notes have power-of-two amounts (msat); a federation lists its tiers in
  `MintClientConfig.tbs_pks`. `represent_amount` splits an amount into tiers (binary).
- **Secrets.** A note is made from a spend key (secp256k1; its public key is the note's
  `Nonce`) and a blinding key (a BLS12-381 scalar). `derive_note_secrets` derives both from a
  32-byte root secret, the federation id and a note index (see the function for the exact
  derivation; it is ours, not upstream's, which uses its own `DerivableSecret` tree).
- **Issuance.** The output asks for a signature on `B = hash(nonce) * r` (`BlindNonce`); each
  guardian answers `B * sk_i` (its `MintOutputOutcome`); `finish_note` checks every share
  against that guardian's public key share for the tier, combines a threshold of valid ones
  (Lagrange at 0 over x = peer + 1), unblinds and checks the result against the tier's
  aggregate key. A guardian whose share fails is named, never trusted.
- **Spending.** A `MintInput` reveals the note (nonce + signature); the transaction carries one
  BIP-340 signature per input, by the note's spend key over the txid.
- **Fees** (`FeeConsensus`): `base + amount * ppm / 10^6` per input and per output. Federations
  of core consensus 2.0 require inputs == outputs + fees exactly; `exact_outputs` finds notes
  whose amounts and fees add up to a given sum.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from coincurve import PrivateKey

from fedimint_gw.crypto.bls import tbs
from fedimint_gw.crypto.bls.fields import R
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import InsufficientFunds
from fedimint_gw.fedimint.encoding import encode
from fedimint_gw.fedimint.mint_errors import NoteInvalid, SharesInsufficient, Unbalanceable
from fedimint_gw.fedimint.mint_types import (
    FeeConsensus,
    MintClientConfig,
    MintInputV0,
    MintOutputV0,
    Note,
    SpendableNote,
    write_mint_input,
    write_mint_output,
)
from fedimint_gw.fedimint.transaction import NONCE_LEN, ModuleItem, Transaction

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SPEND_TAG = b"fedimint-gw/mint/v1/spend-key"
_BLIND_TAG = b"fedimint-gw/mint/v1/blinding-key"
_SEARCH_BUDGET = 50_000


@dataclass(frozen=True, repr=False)
class NoteSecrets:
    """What the client keeps for one note it asks for: amount, spend key and blinding key."""

    amount: int
    spend_key: bytes
    blinding_key: int

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise ValueError("a note amount is positive")
        if len(self.spend_key) != 32 or not 0 < int.from_bytes(self.spend_key, "big") < SECP256K1_ORDER:
            raise ValueError("a spend key is a valid 32-byte secp256k1 secret key")
        if not 0 < self.blinding_key < R:
            raise ValueError("a blinding key is a non-zero scalar")

    def __repr__(self) -> str:
        return f"NoteSecrets(amount={self.amount}, <secret>)"

    @property
    def nonce(self) -> bytes:
        """The note's `Nonce`: the spend key's compressed public key (33 bytes)."""
        return PrivateKey(self.spend_key).public_key.format(compressed=True)

    def message(self) -> tbs.Message:
        """`Nonce::to_message()`: the nonce's 33 bytes hashed to G1."""
        return tbs.message_from_bytes(self.nonce)

    def blinded(self) -> tbs.BlindedMessage:
        return tbs.blind_message(self.message(), tbs.BlindingKey(self.blinding_key))

    def output(self) -> MintOutputV0:
        """The `MintOutput::V0` asking the federation to sign this note."""
        return MintOutputV0(self.amount, self.blinded().encode())


def derive_note_secrets(
    root_secret: bytes, federation_id: FederationId, operation_id: str, position: int, amount: int
) -> NoteSecrets:
    """Deterministic note secrets (our derivation; upstream uses its own `DerivableSecret` tree).

    With op = sha256(operation id, UTF-8) and pos = position as u32 big-endian:
    spend key = HMAC-SHA256(root, tag_spend || federation id (32) || op || pos || n (u8)) for the
    first n = 0, 1, ... that is a valid secp256k1 key; blinding key = HMAC-SHA512(root,
    tag_blind || federation id || op || pos) mod (r - 1) + 1. One (operation, position), one
    note: a replayed operation makes the very same outputs.
    """
    if len(root_secret) != 32:
        raise ValueError("the root secret is 32 bytes")
    if not 0 <= position < 2**32:
        raise ValueError("an output position is a u32")
    base = federation_id.raw + hashlib.sha256(operation_id.encode()).digest() + position.to_bytes(4, "big")
    for n in range(256):
        key = hmac.new(root_secret, _SPEND_TAG + base + bytes([n]), hashlib.sha256).digest()
        if 0 < int.from_bytes(key, "big") < SECP256K1_ORDER:
            break
    else:  # pragma: no cover - probability 2^-32768
        raise ValueError("no valid spend key for this output")
    wide = hmac.new(root_secret, _BLIND_TAG + base, hashlib.sha512).digest()
    return NoteSecrets(amount, key, int.from_bytes(wide, "big") % (R - 1) + 1)


def represent_amount(amount: int, tiers: Sequence[int]) -> list[int]:
    """The tiers summing to `amount`, largest first (binary, several of the top tier if needed)."""
    if amount < 0:
        raise ValueError("negative amount")
    out: list[int] = []
    rest = amount
    for tier in sorted(tiers, reverse=True):
        count = rest // tier
        out.extend([tier] * count)
        rest -= count * tier
    if rest:
        raise Unbalanceable(f"{amount} msat cannot be made of the federation's note tiers")
    return out


def fees_of(fee: FeeConsensus, amounts: Sequence[int]) -> int:
    """The mint fee of these inputs or outputs (one fee per note)."""
    return sum(fee.fee(a) for a in amounts)


def exact_outputs(total: int, fee: FeeConsensus, tiers: Sequence[int]) -> list[int] | None:
    """Note amounts whose amounts plus output fees add up to exactly `total` (largest first),
    or None if there are none (for example a total smaller than the cheapest note's cost)."""
    if total < 0:
        return None
    ordered = sorted(tiers, reverse=True)
    costs = [t + fee.fee(t) for t in ordered]
    failed: set[tuple[int, int]] = set()
    budget = [_SEARCH_BUDGET]

    def solve(rest: int, i: int) -> list[int] | None:
        if rest == 0:
            return []
        if i == len(ordered) or (rest, i) in failed or budget[0] <= 0:
            return None
        budget[0] -= 1
        most = rest // costs[i]
        for count in range(most, max(-1, most - 3), -1):
            found = solve(rest - count * costs[i], i + 1)
            if found is not None:
                return [ordered[i]] * count + found
        failed.add((rest, i))
        return None

    return solve(total, 0)


def greedy_outputs(total: int, fee: FeeConsensus, tiers: Sequence[int]) -> list[int]:
    """The largest notes whose amounts plus fees fit in `total`; what is left over (less than the
    cheapest note's cost) is overpaid to the federation (allowed from core consensus 2.1)."""
    out: list[int] = []
    rest = total
    for tier in sorted(tiers, reverse=True):
        cost = tier + fee.fee(tier)
        while rest >= cost:
            out.append(tier)
            rest -= cost
    return out


def balanced_outputs(total: int, fee: FeeConsensus, tiers: Sequence[int], overpay: bool) -> list[int] | None:
    """Exact outputs if there are any, else (only when `overpay` is allowed) the greedy ones."""
    exact = exact_outputs(total, fee, tiers)
    if exact is not None or not overpay:
        return exact
    return greedy_outputs(total, fee, tiers)


def select_notes(notes: Sequence[tuple[int, SpendableNote]], target: int) -> list[tuple[int, SpendableNote]]:
    """Notes worth at least `target`: largest that fit first, then the smallest that covers the
    rest; InsufficientFunds if all of them are not enough."""
    total = sum(a for a, _ in notes)
    if total < target:
        raise InsufficientFunds(f"notes worth {total} msat cannot cover {target} msat")
    order = sorted(range(len(notes)), key=lambda i: notes[i][0], reverse=True)
    chosen: list[int] = []
    rest = target
    for i in order:
        if 0 < notes[i][0] <= rest:
            chosen.append(i)
            rest -= notes[i][0]
    for i in reversed(order):
        if rest <= 0:
            break
        if i not in chosen and notes[i][0] >= rest:
            chosen.append(i)
            rest -= notes[i][0]
    for i in reversed(order):
        if rest <= 0:
            break
        if i not in chosen:
            chosen.append(i)
            rest -= notes[i][0]
    return [notes[i] for i in sorted(chosen, key=lambda j: -notes[j][0])]


def exact_subset(
    notes: Sequence[tuple[int, SpendableNote]], target: int
) -> list[tuple[int, SpendableNote]] | None:
    """Notes adding up to exactly `target` (largest that fit first), or None."""
    chosen: list[tuple[int, SpendableNote]] = []
    rest = target
    for item in sorted(notes, key=lambda n: -n[0]):
        if item[0] <= rest:
            chosen.append(item)
            rest -= item[0]
    return chosen if rest == 0 else None


def note_nonce(note: SpendableNote) -> bytes:
    """The public nonce of a spendable note (its spend key's public key)."""
    return PrivateKey(note.spend_key).public_key.format(compressed=True)


def check_note(amount: int, note: SpendableNote, config: MintClientConfig) -> None:
    """Refuse a note whose tier is unknown or whose signature is not the federation's."""
    key = config.tbs_pks.get(amount)
    if key is None:
        raise NoteInvalid(f"no note tier of {amount} msat in this federation")
    try:
        valid = tbs.verify(
            tbs.message_from_bytes(note_nonce(note)),
            tbs.Signature.decode(note.signature),
            tbs.AggregatePublicKey.decode(key),
        )
    except (CryptoError, ValueError) as exc:
        raise NoteInvalid(f"a {amount} msat note is malformed: {exc}") from None
    if not valid:
        raise NoteInvalid(f"a {amount} msat note is not signed by this federation")


@dataclass(frozen=True)
class FinishedNote:
    """A note made from guardians' shares, and the guardians whose shares were invalid."""

    amount: int
    note: SpendableNote
    bad_peers: tuple[int, ...] = field(default=())


def finish_note(
    secrets: NoteSecrets, shares: Mapping[int, bytes], config: MintClientConfig, threshold: int
) -> FinishedNote:
    """Check each guardian's blind signature share, combine a threshold, unblind and verify.

    `shares` maps peer id -> that guardian's 48-byte share. SharesInsufficient when fewer than
    `threshold` shares are valid (the message names the guardians that misbehaved).
    """
    blinded = secrets.blinded()
    good: dict[int, tbs.BlindedSignatureShare] = {}
    bad: list[int] = []
    for peer, raw in sorted(shares.items()):
        pk_raw = config.peer_tbs_pks.get(peer, {}).get(secrets.amount)
        try:
            if pk_raw is None:
                raise CryptoError("no key share for this guardian and tier")
            share = tbs.BlindedSignatureShare.decode(raw)
            ok = tbs.verify_signature_share(blinded, share, tbs.PublicKeyShare.decode(pk_raw))
        except CryptoError:
            ok = False
        if ok:
            good[peer] = share
        else:
            bad.append(peer)
    if len(good) < threshold:
        raise SharesInsufficient(
            f"only {len(good)} valid signature shares for a {secrets.amount} msat note, {threshold} needed"
            + (f"; invalid shares from guardian(s) {bad}" if bad else "")
        )
    chosen = {p: good[p] for p in sorted(good)[:threshold]}
    signature = tbs.unblind_signature(
        tbs.BlindingKey(secrets.blinding_key), tbs.aggregate_signature_shares(chosen)
    )
    key = config.tbs_pks.get(secrets.amount)
    if key is None or not tbs.verify(secrets.message(), signature, tbs.AggregatePublicKey.decode(key)):
        raise SharesInsufficient(f"combined signature for a {secrets.amount} msat note does not verify")
    return FinishedNote(secrets.amount, SpendableNote(signature.encode(), secrets.spend_key), tuple(bad))


def mint_input(amount: int, note: SpendableNote) -> MintInputV0:
    """The `MintInput::V0` spending a note."""
    return MintInputV0(amount, Note(note_nonce(note), note.signature))


def _input_bytes(amount: int, note: SpendableNote) -> bytes:
    value = mint_input(amount, note)
    return encode(lambda w: write_mint_input(w, value))


def _output_bytes(secrets: NoteSecrets) -> bytes:
    value = secrets.output()
    return encode(lambda w: write_mint_output(w, value))


def build_transaction(
    module_instance_id: int,
    inputs: Sequence[tuple[int, SpendableNote]],
    outputs: Sequence[NoteSecrets],
    nonce: bytes,
) -> Transaction:
    """A transaction spending `inputs` into blinded `outputs`, signed by every input's spend key."""
    if len(nonce) != NONCE_LEN:
        raise ValueError(f"a transaction nonce is {NONCE_LEN} bytes")
    items_in = [ModuleItem(module_instance_id, _input_bytes(a, n)) for a, n in inputs]
    items_out = [ModuleItem(module_instance_id, _output_bytes(o)) for o in outputs]
    return Transaction.signed(items_in, items_out, nonce, [n.spend_key for _, n in inputs])


@dataclass(frozen=True)
class ReissuePlan:
    """Inputs and output amounts of a balanced mint transaction."""

    inputs: tuple[tuple[int, SpendableNote], ...]
    outputs: tuple[int, ...]
    fee_msat: int


def plan_reissue(
    inputs: Sequence[tuple[int, SpendableNote]], config: MintClientConfig, overpay: bool = False
) -> ReissuePlan:
    """Spend every input into fresh notes worth the inputs minus all fees: exactly balanced, or
    (when `overpay` is allowed) leaving less than one note's cost to the federation."""
    fee = config.fee_consensus
    total = sum(a for a, _ in inputs)
    available = total - fees_of(fee, [a for a, _ in inputs])
    outputs = balanced_outputs(available, fee, config.denominations, overpay) if available > 0 else None
    if not outputs:
        raise Unbalanceable(f"notes worth {total} msat are too little to reissue after fees")
    return ReissuePlan(tuple(inputs), tuple(outputs), total - sum(outputs))


@dataclass(frozen=True)
class SplitPlan:
    """A transaction paying `send` notes (the exact amount, to hand out) plus change to us."""

    inputs: tuple[tuple[int, SpendableNote], ...]
    send: tuple[int, ...]
    change: tuple[int, ...]
    fee_msat: int


def plan_split(
    notes: Sequence[tuple[int, SpendableNote]], amount: int, config: MintClientConfig, overpay: bool = False
) -> SplitPlan:
    """Choose inputs and outputs so that `amount` comes out as fresh notes and the rest (minus
    every fee) as change, exactly balanced; InsufficientFunds or Unbalanceable otherwise."""
    fee = config.fee_consensus
    send = represent_amount(amount, config.denominations)
    need = amount + fees_of(fee, send)
    pool = sorted(notes, key=lambda n: -n[0])
    target = need
    for _ in range(len(pool) + 2):
        chosen = select_notes(pool, target)
        rest = sum(a for a, _ in chosen) - fees_of(fee, [a for a, _ in chosen]) - need
        if rest < 0:
            target += -rest
            continue
        change = balanced_outputs(rest, fee, config.denominations, overpay)
        if change is not None:
            total = sum(a for a, _ in chosen)
            return SplitPlan(tuple(chosen), tuple(send), tuple(change), total - amount - sum(change))
        target = sum(a for a, _ in chosen) + 1
    raise Unbalanceable(f"cannot balance a transaction paying {amount} msat with these notes and fees")


@dataclass(frozen=True)
class NoteFees:
    """The mint's fees for moving `amount` as notes (see `note_fees`)."""

    spend: int  # handing out notes worth `amount`: paid on top, from the spender's other notes (estimate)
    reissue: int  # reissuing notes worth `amount`: taken from their value


def note_fees(amount: int, config: MintClientConfig, overpay: bool = False) -> NoteFees:
    """What the mint takes, per note, when notes worth `amount` change hands, computed from the
    federation's public config alone, so every client of the federation gets the same figures.

    - `reissue`: the notes a spend hands out are `represent_amount(amount)`; reissuing them pays
      one input fee per note, then one output fee per fresh note (`plan_reissue`'s outputs), plus
      any dust a balanced transaction leaves to the federation. Exact for notes made by a spend
      (ours or a peer's running this code); `amount` itself when nothing is left.
    - `spend`: an estimate (what a spend really costs depends on the notes the wallet holds):
      the output fees of those notes, the input fees of notes worth what they need, and an
      allowance for change of as many notes as the amount has (a wallet seldom holds the exact
      notes; its change is as varied as any amount).
    """
    fee = config.fee_consensus
    tiers = config.denominations
    try:
        send = represent_amount(amount, tiers)
        send_fees = fees_of(fee, send)
        available = amount - send_fees
        outputs = balanced_outputs(available, fee, tiers, overpay) if available > 0 else None
        reissue = amount - sum(outputs) if outputs else amount
        need = target = amount + send_fees
        for _ in range(64):  # converges in a few rounds: each adds at most a few notes' fees
            inputs_fee = fees_of(fee, represent_amount(target, tiers))
            if target - inputs_fee >= need:
                return NoteFees(spend=target - amount + send_fees, reissue=reissue)
            target = need + inputs_fee
    except Unbalanceable:
        pass
    return NoteFees(spend=amount, reissue=amount)  # not representable: nothing would be left
