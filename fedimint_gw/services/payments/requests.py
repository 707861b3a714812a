"""How a receive's `IncomingRequest` is kept in a payment record (JSON), for every flow that funds one."""

from __future__ import annotations

from typing import Any

from fedimint_gw.domain.amount import Msat
from fedimint_gw.federation.client import IncomingRequest


def request_json(req: IncomingRequest) -> dict[str, Any]:
    """The request as stored."""
    return {
        "contract_id": req.contract_id,
        "payment_hash": req.payment_hash,
        "amount_msat": req.amount.value,
        "expiry": req.expiry,
        "data": req.data,
    }


def request_from_json(raw: dict[str, Any]) -> IncomingRequest:
    """The stored request back."""
    return IncomingRequest(
        contract_id=str(raw["contract_id"]),
        payment_hash=str(raw["payment_hash"]),
        amount=Msat(int(raw["amount_msat"])),
        expiry=int(raw["expiry"]),
        data=dict(raw["data"]),
    )
