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
from fedimint_gw.fedimint.encoding import decode_whole
from fedimint_gw.fedimint.mint_api import await_output_outcome
from fedimint_gw.fedimint.mint_client import (
    FinishedNote,
    NoteSecrets,
    build_transaction,
    finish_note,
    represent_amount,
)
from fedimint_gw.fedimint.mint_types import (
    MINT_KIND,
    MintClientConfig,
    SpendableNote,
    read_mint_output_outcome,
)
from fedimint_gw.fedimint.mint_types import MintOutputOutcomeV0 as OutcomeV0
from fedimint_gw.fedimint.oob import OOBNotes
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import OutPoint, TransactionSubmissionOutcome


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


async def collect_notes(
    api: FederationApi,
    config: ClientConfig,
    mint_id: int,
    txid: bytes,
    outputs: list[NoteSecrets],
    first_out_idx: int = 0,
) -> list[FinishedNote]:
    """Ask every guardian for its share of each output and combine them into notes."""
    mint = MintClientConfig.from_bytes(config.modules[mint_id].raw)
    notes = []
    for j, out in enumerate(outputs):
        shares: dict[int, bytes] = {}
        for peer in api.peers:
            try:
                item = await await_output_outcome(api, peer, OutPoint(txid, first_out_idx + j))
            except Exception:
                continue
            outcome = decode_whole(item.data, read_mint_output_outcome)
            if item.module_instance_id == mint_id and isinstance(outcome, OutcomeV0):
                shares[peer] = outcome.share
        notes.append(finish_note(out, shares, mint, config.threshold))
    return notes


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
        notes = await collect_notes(api, config, module.instance_id, tx.txid(), outputs)
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
