"""What the gateway tells the outside world as it happens: CLN custom notifications.

The services emit events through `GatewayEvents`; the plugin implements it with lightningd
custom notifications (topics `TOPICS`, declared before the plugin starts), tests with a list.
Emitting never raises into a flow and never blocks it: an event that cannot be delivered is
lost (the payments log, `fedimint-payments` and the metrics stay the source of truth).
"""

from __future__ import annotations

from typing import Any, Protocol

from fedimint_gw.store.payments import PaymentRecord

PAYMENT_FINISHED = "fedimint_payment_finished"
FEDERATION_STATUS = "fedimint_federation_status"
LOSS_REPORTED = "fedimint_loss_reported"
LIMIT_CROSSED = "fedimint_limit_crossed"
TOPICS = (PAYMENT_FINISHED, FEDERATION_STATUS, LOSS_REPORTED, LIMIT_CROSSED)


class GatewayEvents(Protocol):
    """Receives the gateway's events (one of `TOPICS` and a JSON object)."""

    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        """Deliver one event; must not block and must not raise."""
        ...


class NoEvents:
    """Drops every event (a gateway without subscribers, most tests)."""

    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        """Drop the event."""


def payment_event(rec: PaymentRecord) -> dict[str, Any]:
    """The `fedimint_payment_finished` payload of a payment that reached a terminal state."""
    body: dict[str, Any] = {
        "payment_id": rec.payment_id,
        "kind": rec.kind.value,
        "state": rec.state.value,
        "federation_id": rec.federation_id,
        "payment_hash": rec.payment_hash,
        "amount_msat": rec.amount_msat,
        "fee_msat": rec.fee_msat,
        "created_at": rec.created_at,
        "finished_at": rec.updated_at,
    }
    if rec.target_federation_id:
        body["target_federation_id"] = rec.target_federation_id
    if "elapsed_ms" in rec.data:
        body["elapsed_ms"] = rec.data["elapsed_ms"]
    if rec.error:
        body["error"] = rec.error
    return body


def lost_msat(rec: PaymentRecord) -> int:
    """What a payment lost the gateway (recorded by the flow as `lost_msat`; 0 if nothing)."""
    try:
        return max(0, int(rec.data.get("lost_msat", 0)))
    except (TypeError, ValueError):
        return 0
