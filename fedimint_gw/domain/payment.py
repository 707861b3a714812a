"""Payment kinds and the states of their flows."""

from __future__ import annotations

import enum


class PaymentKind(enum.Enum):
    RECEIVE = "receive"  # Lightning -> federation
    SEND = "send"  # federation -> Lightning
    SWAP = "swap"  # federation -> federation on this gateway
    PEER = "peer"  # federation -> peer gateway
    MIGRATE = "migrate"  # the gateway's own ecash between federations


class PaymentState(enum.Enum):
    """Where a flow stands. Each state is written before the side effect that follows it."""

    REGISTERED = "registered"  # v2 receive: invoice created, waiting for the HTLC
    HTLC_HELD = "htlc_held"  # receive: HTLC checked and held; next: fund the contract
    FUNDED = "funded"  # receive: contract funded; next: obtain the preimage
    PAYING = "paying"  # send: about to pay / paying over Lightning
    CLAIMING = "claiming"  # send: preimage known; next: claim the user's contract
    CANCELLING = "cancelling"  # send: payment failed; next: cancel/forfeit so the user is refunded
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"  # failed, and the money went back where it came from

    @property
    def terminal(self) -> bool:
        return self in (PaymentState.SUCCEEDED, PaymentState.FAILED, PaymentState.REFUNDED)
