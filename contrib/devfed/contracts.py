"""Lightning contract states, the digests gateways sign, and the JSON view of a contract."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

CANCEL_PURPOSE = "cancel"
"""v1: gateway signs ``{"contract_id": id}`` to cancel an outgoing contract at once."""
FORFEIT_PURPOSE = "forfeit"
"""v2: gateway signs ``{"contract_id": id}``; the user puts it in an ``outgoing_refund`` input."""
INPUT_PURPOSE = "input"
"""Spend authorisation: ``{"txid": txid, "input_index": i}``."""
GATEWAY_REGISTRATION_PURPOSE = "gateway_registration"
"""v1 self-registration: the gateway key signs the registration object."""
SEND_AUTH_PURPOSE = "send_payment"
"""v2 wallet → gateway: the refund key signs ``{"contract_id": id, "invoice": bolt11}``."""
PREIMAGE_AUTH_PURPOSE = "preimage_auth"


class ContractKind(Enum):
    """The three contract kinds (the output kinds that create them)."""

    OUTGOING = "outgoing_contract"
    INCOMING_V1 = "incoming_contract_v1"
    INCOMING_V2 = "incoming_contract_v2"


class ContractState(Enum):
    """Where a contract is in its life.

    outgoing: funded → claimed | cancelled → refunded (or funded → refunded after the timelock or
    with a forfeit signature). incoming v1: decrypting → preimage → claimed, or → refund → refunded.
    incoming v2: funded → claimed (valid preimage) | refunded (invalid preimage).
    """

    FUNDED = "funded"
    DECRYPTING = "decrypting"
    PREIMAGE = "preimage"
    REFUND = "refund"
    CANCELLED = "cancelled"
    CLAIMED = "claimed"
    REFUNDED = "refunded"


def contract_view(
    contract_id: str, body: Mapping[str, object], state: ContractState, data: Mapping[str, object]
) -> dict[str, object]:
    """The JSON a guardian returns for a contract (both API versions embed it)."""
    view: dict[str, object] = {
        "contract_id": contract_id,
        "kind": body["kind"],
        "contract": dict(body),
        "state": state.value,
        "amount_msat": body["amount_msat"],
        "funded_txid": data.get("funded_txid"),
        "preimage": data.get("preimage"),
    }
    if "claim_pubkey" in data:
        view["claim_pubkey"] = data["claim_pubkey"]
    return view
