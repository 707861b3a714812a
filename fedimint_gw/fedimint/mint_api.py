"""Core endpoint calls with values in the `SerdeModuleEncoding` form the official client uses.

`endpoints.py` sends and expects bare hex; the v0.7-era official client sends `["<hex of
len || encoding>"]` (see `serde_value.py`), and devfed's Fedimint family speaks that form. These
calls are what the mint client uses until `endpoints.py` is aligned.
"""

from __future__ import annotations

from fedimint_gw.fedimint.encoding import decode_whole
from fedimint_gw.fedimint.errors import GuardianRpcError
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
