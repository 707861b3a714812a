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
from fedimint_gw.fedimint.mint_client import NoteSecrets, mint_input
from fedimint_gw.fedimint.mint_types import SpendableNote, write_mint_input, write_mint_output
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
