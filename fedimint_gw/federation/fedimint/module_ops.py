"""Mint operations that also carry another module's item (LNv1 contracts), stored like the others.

- **fund**: our notes pay `amount` plus the module item's fee into one module output (an
  incoming or outgoing contract); the change comes back as notes. Outputs: change first, the
  module output last (so change output `i` is out point `i`).
- **redeem**: one module input (a contract we may spend, signed by its key) becomes notes of
  ours: its amount less the input's module fee and the mint's fees.
- **plain**: module outputs only, no notes (an outgoing contract's cancellation).
Each is prepared (stored, inputs reserved) before anything is sent and driven by
`MintClient.run` like a reissue: replaying it is harmless.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import InsufficientFunds, InvalidInput, NotFound, NotReady
from fedimint_gw.federation.client import IncomingRequest
from fedimint_gw.federation.fedimint.notes import FedimintNotes, MintOperation
from fedimint_gw.fedimint.encoding import encode
from fedimint_gw.fedimint.mint_client import (
    NoteSecrets,
    balanced_outputs,
    fees_of,
    mint_input,
    select_notes,
)
from fedimint_gw.fedimint.mint_errors import Unbalanceable
from fedimint_gw.fedimint.mint_types import SpendableNote, write_mint_input, write_mint_output
from fedimint_gw.fedimint.transaction import ModuleItem, Transaction

FUND = "fm_module_fund"
REDEEM = "fm_module_redeem"
PLAIN = "fm_module_plain"


def mint_in_item(notes: FedimintNotes, amount: int, note: SpendableNote) -> ModuleItem:
    value = mint_input(amount, note)
    return ModuleItem(notes.mint_instance_id, encode(lambda w: write_mint_input(w, value)))


def mint_out_item(notes: FedimintNotes, secret: NoteSecrets) -> ModuleItem:
    value = secret.output()
    return ModuleItem(notes.mint_instance_id, encode(lambda w: write_mint_output(w, value)))


def plan_fund(
    pool: Sequence[tuple[int, SpendableNote]], need: int, notes: FedimintNotes
) -> tuple[list[tuple[int, SpendableNote]], list[int]]:
    """Inputs worth `need` plus every mint fee, and the change amounts (exactly balanced, or with
    dust overpaid where the federation allows it)."""
    fee = notes.config.fee_consensus
    ordered = sorted(pool, key=lambda n: -n[0])
    target = need
    for _ in range(len(ordered) + 2):
        chosen = select_notes(ordered, target)
        rest = sum(a for a, _ in chosen) - fees_of(fee, [a for a, _ in chosen]) - need
        if rest < 0:
            target += -rest
            continue
        change = balanced_outputs(rest, fee, notes.config.denominations, notes.overpay) if rest else []
        if change is not None:
            return chosen, change
        target = sum(a for a, _ in chosen) + 1
    raise Unbalanceable(f"cannot balance a transaction paying {need} msat with these notes and fees")


async def prepare_fund(
    notes: FedimintNotes, operation_id: str, amount: Msat, module_fee: int, output: ModuleItem
) -> MintOperation:
    """Reserve notes paying `amount` (+ `module_fee`) into `output`; store the transaction."""
    existing = await notes.get(operation_id)
    if existing is not None:
        return existing
    if amount.value <= 0:
        raise InvalidInput("a contract is funded with a positive amount")
    async with notes.db.transaction() as conn:
        if await notes.exists(conn, operation_id):
            return await notes.must_get(operation_id)
        pool = await notes.unspent(conn)
        try:
            inputs, change = plan_fund(pool, amount.value + module_fee, notes)
        except InsufficientFunds:
            if await notes.reserved(conn) > 0:
                raise NotReady("part of the gateway's notes is reserved by operations in flight") from None
            raise
        except Unbalanceable as exc:
            raise InsufficientFunds(str(exc)) from None
        outputs = notes.derive_outputs(operation_id, change)
        items_out = [*(mint_out_item(notes, o) for o in outputs), output]
        tx = Transaction.signed(
            [mint_in_item(notes, a, n) for a, n in inputs],
            items_out,
            secrets.token_bytes(8),
            [n.spend_key for _, n in inputs],
        )
        await notes.reserve(conn, operation_id, [n for _, n in inputs])
        await notes.insert_op(conn, operation_id, FUND, tx, outputs, 0)
    return await notes.must_get(operation_id)


async def prepare_redeem(
    notes: FedimintNotes, operation_id: str, value: int, module_input: ModuleItem, key: bytes
) -> MintOperation:
    """Store a transaction spending `module_input` (worth `value` after its module fee, signed
    with `key`) into fresh notes of ours."""
    existing = await notes.get(operation_id)
    if existing is not None:
        return existing
    fee = notes.config.fee_consensus
    amounts = balanced_outputs(value, fee, notes.config.denominations, notes.overpay) if value > 0 else None
    if not amounts:
        raise InsufficientFunds(f"{value} msat is too little to redeem after the mint's fees")
    outputs = notes.derive_outputs(operation_id, amounts)
    tx = Transaction.signed(
        [module_input], [mint_out_item(notes, o) for o in outputs], secrets.token_bytes(8), [key]
    )
    async with notes.db.transaction() as conn:
        if not await notes.exists(conn, operation_id):
            await notes.insert_op(conn, operation_id, REDEEM, tx, outputs, 0)
    return await notes.must_get(operation_id)


async def prepare_plain(
    notes: FedimintNotes, operation_id: str, outputs: Sequence[ModuleItem]
) -> MintOperation:
    """Store a transaction of module outputs only (no notes move)."""
    existing = await notes.get(operation_id)
    if existing is not None:
        return existing
    tx = Transaction.signed([], list(outputs), secrets.token_bytes(8), [])
    async with notes.db.transaction() as conn:
        if not await notes.exists(conn, operation_id):
            await notes.insert_op(conn, operation_id, PLAIN, tx, [], 0)
    return await notes.must_get(operation_id)


async def funding_fee_of(notes: FedimintNotes, request: IncomingRequest, operation_id: str) -> Msat:
    """What a stored funding of `request` took beyond the contract: the notes it spends less the
    change it makes less the contract's amount (mint fees and the module's contract fee)."""
    if await notes.get(operation_id) is None:
        raise NotFound(f"no funding stored under operation {operation_id}")
    paid = await notes.spend_fee(operation_id)
    return Msat(max(0, paid.value - request.amount.value))
