"""Get notes from a devfed Fedimint federation's faucet, as out-of-band notes (``OOBNotes``).

The faucet (admin API) accepts a transaction with mint outputs and no inputs; the notes are then
issued like any others: every guardian answers ``await_output_outcome`` with its own signature
share, and the client (``fedimint_gw.fedimint.mint_client``) checks each share, combines a
threshold and unblinds. Fresh random secrets are used for each call.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import aiohttp

from fedimint_gw.crypto.bls import tbs
from fedimint_gw.fedimint.config import ClientConfig
from fedimint_gw.fedimint.mint_api import collect_notes
from fedimint_gw.fedimint.mint_client import (
    FinishedNote,
    NoteSecrets,
    build_transaction,
    represent_amount,
)
from fedimint_gw.fedimint.mint_types import (
    MINT_KIND,
    MintClientConfig,
    SpendableNote,
)
from fedimint_gw.fedimint.oob import OOBNotes
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import TransactionSubmissionOutcome


class FaucetError(Exception):
    """The faucet refused, or the guardians did not issue the notes."""


@dataclass(frozen=True)
class FaucetNotes:
    """Notes from the faucet: the finished notes and their OOB text form."""

    notes: tuple[FinishedNote, ...]
    oob: OOBNotes

    @property
    def total_msat(self) -> int:
        return sum(n.amount for n in self.notes)


def fresh_secrets(amount: int) -> NoteSecrets:
    """Random note secrets (spend key and blinding key from the OS CSPRNG)."""
    while True:
        key = secrets.token_bytes(32)
        try:
            return NoteSecrets(amount, key, tbs.BlindingKey.random().scalar)
        except ValueError:  # pragma: no cover - an invalid secp256k1 key, probability ~2^-128
            continue


async def faucet_notes(
    session: aiohttp.ClientSession, admin_url: str, config: ClientConfig, amount_msat: int
) -> FaucetNotes:
    """Ask the faucet for `amount_msat` in notes; return them with their OOB text form."""
    module = config.module_by_kind(MINT_KIND)
    if module is None:
        raise FaucetError("the federation has no mint module")
    mint = MintClientConfig.from_bytes(module.raw)
    outputs = [fresh_secrets(a) for a in represent_amount(amount_msat, mint.denominations)]
    tx = build_transaction(module.instance_id, [], outputs, secrets.token_bytes(8))
    async with session.post(f"{admin_url}/admin/faucet", json={"transaction": tx.to_hex()}) as resp:
        body = await resp.json()
    if resp.status != 200 or not body.get("accepted"):
        detail = body.get("error") or TransactionSubmissionOutcome.from_hex(body["outcome"]).result
        raise FaucetError(f"the faucet refused: {detail}")
    api = FederationApi.from_config(config, session)
    try:
        notes = await collect_notes(api, module.instance_id, mint, tx.txid(), outputs)
    finally:
        await api.close()
    by_tier: dict[int, list[SpendableNote]] = {}
    for note in notes:
        by_tier.setdefault(note.amount, []).append(note.note)
    peer_apis = tuple((p, u.url) for p, u in sorted(config.api_endpoints.items()))
    oob = OOBNotes.new(
        config.federation_id(),
        {a: tuple(items) for a, items in sorted(by_tier.items())},
        peer_apis,
    )
    return FaucetNotes(tuple(notes), oob)
