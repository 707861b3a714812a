"""Core endpoint calls with values in the `SerdeModuleEncoding` form the official client uses.

`endpoints.py` sends and expects bare hex; the v0.7-era official client sends `["<hex of
len || encoding>"]` (see `serde_value.py`), and devfed's Fedimint family speaks that form. These
calls are what the mint client uses until `endpoints.py` is aligned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fedimint_gw.fedimint.encoding import UnknownVariant, decode_whole
from fedimint_gw.fedimint.errors import DecodeError, FedimintProtocolError, GuardianRpcError
from fedimint_gw.fedimint.mint_client import FinishedNote, NoteSecrets, finish_note
from fedimint_gw.fedimint.mint_types import MintClientConfig, read_mint_output_outcome
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.serde_value import from_serde, to_serde
from fedimint_gw.fedimint.transaction import (
    TXID_LEN,
    ModuleItem,
    OutPoint,
    Transaction,
    TransactionSubmissionOutcome,
)

SUBMIT_TRANSACTION = "submit_transaction"
AWAIT_TRANSACTION = "await_transaction"
AWAIT_OUTPUT_OUTCOME = "await_output_outcome"


async def submit_transaction(
    api: FederationApi, tx: Transaction, *, timeout: float | None = None
) -> TransactionSubmissionOutcome:
    """Submit to every guardian; the outcome a threshold of them agree on."""
    result = await api.threshold_request(SUBMIT_TRANSACTION, to_serde(tx.to_bytes()), timeout=timeout)
    return decode_whole(from_serde(result, "submission outcome"), TransactionSubmissionOutcome.read)


async def await_transaction(api: FederationApi, txid: bytes, *, timeout: float | None = None) -> None:
    """Return once a threshold of guardians say the transaction is accepted."""
    result = await api.threshold_request(AWAIT_TRANSACTION, txid.hex(), timeout=timeout)
    if result != txid.hex() or len(txid) != TXID_LEN:
        raise GuardianRpcError(f"await_transaction answered {str(result)[:80]!r} for {txid.hex()}")


async def await_output_outcome(
    api: FederationApi, peer_id: int, out_point: OutPoint, *, timeout: float | None = None
) -> ModuleItem:
    """One guardian's outcome of an output (a module dyn value; the module decodes `data`)."""
    result = await api.request_peer(peer_id, AWAIT_OUTPUT_OUTCOME, out_point.to_json(), timeout=timeout)
    return decode_whole(from_serde(result, f"guardian {peer_id} output outcome"), ModuleItem.read)


async def _share(
    api: FederationApi, peer: int, mint_id: int, out_point: OutPoint, timeout: float | None
) -> bytes | None:
    try:
        item = await await_output_outcome(api, peer, out_point, timeout=timeout)
        if item.module_instance_id != mint_id:
            raise DecodeError(f"guardian {peer}: outcome of module {item.module_instance_id}, not the mint")
        outcome = decode_whole(item.data, read_mint_output_outcome)
    except FedimintProtocolError:
        return None  # a guardian that fails or lies simply gives no usable share
    return None if isinstance(outcome, UnknownVariant) else outcome.share


async def collect_notes(
    api: FederationApi,
    mint_id: int,
    config: MintClientConfig,
    txid: bytes,
    outputs: Sequence[NoteSecrets],
    *,
    timeout: float | None = None,
) -> list[FinishedNote]:
    """Every guardian's signature share of each output (asked concurrently), each share checked
    and a threshold combined (`finish_note`); SharesInsufficient if one output lacks a threshold."""
    peers = list(api.peers)
    shares = await asyncio.gather(
        *(_share(api, p, mint_id, OutPoint(txid, j), timeout) for j in range(len(outputs)) for p in peers)
    )
    notes = []
    for j, out in enumerate(outputs):
        row = shares[j * len(peers) : (j + 1) * len(peers)]
        got = {p: s for p, s in zip(peers, row, strict=True) if s is not None}
        notes.append(finish_note(out, got, config, api.threshold))
    return notes
