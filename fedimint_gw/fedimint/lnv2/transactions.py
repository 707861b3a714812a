"""Transactions mixing mint notes and LNv2 items, signed in input order (BIP-340 over the txid).

Each input brings the secret key the federation checks it against: a note's spend key, or for
an LNv2 input the contract key its witness calls for (claim key for a claim, refund key for a
refund or cancel; for an incoming contract, claim key if the key decrypts, else refund key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedimint_gw.fedimint.encoding import encode
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.mint_client import (
    NoteSecrets,
    balanced_outputs,
    fees_of,
    mint_input,
    select_notes,
)
from fedimint_gw.fedimint.mint_errors import Unbalanceable
from fedimint_gw.fedimint.mint_types import (
    MintClientConfig,
    SpendableNote,
    write_mint_input,
    write_mint_output,
)
from fedimint_gw.fedimint.transaction import NONCE_LEN, ModuleItem, Transaction


@dataclass(frozen=True)
class Instances:
    """Module instance ids of the mint and LNv2 in one federation."""

    mint: int
    lnv2: int


def note_input(instance: int, amount: int, note: SpendableNote) -> tuple[ModuleItem, bytes]:
    value = mint_input(amount, note)
    return ModuleItem(instance, encode(lambda w: write_mint_input(w, value))), note.spend_key


def note_output(instance: int, secrets: NoteSecrets) -> ModuleItem:
    value = secrets.output()
    return ModuleItem(instance, encode(lambda w: write_mint_output(w, value)))


def lnv2_input(instance: int, value: items.LightningInput, secret_key: bytes) -> tuple[ModuleItem, bytes]:
    return ModuleItem(instance, items.input_bytes(value)), secret_key


def lnv2_output(instance: int, value: items.LightningOutput) -> ModuleItem:
    return ModuleItem(instance, items.output_bytes(value))


def build(
    inputs: Sequence[tuple[ModuleItem, bytes]], outputs: Sequence[ModuleItem], nonce: bytes
) -> Transaction:
    """Sign ``inputs`` (item, secret key) in order; ``outputs`` as given."""
    if len(nonce) != NONCE_LEN:
        raise ValueError(f"a transaction nonce is {NONCE_LEN} bytes")
    return Transaction.signed([i for i, _ in inputs], list(outputs), nonce, [k for _, k in inputs])


@dataclass(frozen=True)
class FundingPlan:
    """Notes spent into one module output worth ``amount`` (plus its fee), with our change."""

    inputs: tuple[tuple[int, SpendableNote], ...]
    change: tuple[int, ...]


def plan_funding(
    notes: Sequence[tuple[int, SpendableNote]],
    amount: int,
    module_fee: int,
    config: MintClientConfig,
    overpay: bool = False,
) -> FundingPlan:
    """Choose notes covering ``amount + module_fee`` plus the mint's input fees, and change
    notes for the rest, exactly balanced (or overpaying dust when allowed); InsufficientFunds
    or Unbalanceable otherwise."""
    fee = config.fee_consensus
    need = amount + module_fee
    target = need
    pool = sorted(notes, key=lambda n: -n[0])
    for _ in range(len(pool) + 2):
        chosen = select_notes(pool, target)
        rest = sum(a for a, _ in chosen) - fees_of(fee, [a for a, _ in chosen]) - need
        if rest < 0:
            target += -rest
            continue
        change = [] if rest == 0 else balanced_outputs(rest, fee, config.denominations, overpay)
        if change is not None:
            return FundingPlan(tuple(chosen), tuple(change))
        target = sum(a for a, _ in chosen) + 1
    raise Unbalanceable(f"cannot balance a funding of {amount} msat with these notes and fees")


def claim_outputs(amount: int, module_fee: int, config: MintClientConfig, overpay: bool = False) -> list[int]:
    """Note amounts a module input worth ``amount`` (less its fee) is spent into."""
    rest = amount - module_fee
    if rest <= 0:
        raise Unbalanceable(f"{amount} msat cannot be reissued after fees")
    outputs = balanced_outputs(rest, config.fee_consensus, config.denominations, overpay)
    if not outputs:
        raise Unbalanceable(f"{amount} msat cannot be reissued after fees")
    return outputs
