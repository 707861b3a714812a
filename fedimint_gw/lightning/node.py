"""The `LightningNode` seam: what the gateway needs from its Lightning node.

`cln.py` implements it over lightningd's JSON-RPC; tests use a fake with the same shape.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import ShortChannelId


@dataclass(frozen=True)
class NodeInfo:
    """Identity and chain position of the node."""

    node_id: str
    alias: str
    network: str
    block_height: int
    version: str


@dataclass(frozen=True)
class Liquidity:
    """What the node can move: over channels, and on chain."""

    spendable: Msat
    receivable: Msat
    onchain_sat: int


class PaymentStatus(enum.Enum):
    """Outcome of an outgoing Lightning payment. PENDING means: not known yet, ask again."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PENDING = "pending"


class HtlcFate(enum.Enum):
    """What lightningd did with an incoming HTLC the gateway answered `resolve` to."""

    PENDING = "pending"  # still in the channel: held, replayed, or being removed
    FULFILLED = "fulfilled"  # removed, and the channel was credited for its payment hash
    FAILED = "failed"  # removed with no credit: lightningd failed it (the answer never arrived)
    UNKNOWN = "unknown"  # lightningd no longer lists it (its channel is forgotten)


@dataclass(frozen=True)
class PaymentOutcome:
    """What became of a payment: preimage on success, reason on failure."""

    status: PaymentStatus
    preimage: bytes | None = None
    amount_sent: Msat | None = None
    reason: str = ""
    attempts: int = 0  # payment parts lightningd knows of (0: nothing was ever sent)


class LightningNode(Protocol):
    """The Lightning node operations the gateway uses."""

    async def info(self) -> NodeInfo:
        """Node id, alias, network and current block height."""
        ...

    async def liquidity(self) -> Liquidity:
        """Sum of spendable and receivable amounts over active channels, and confirmed on-chain funds."""
        ...

    async def channel_scids(self) -> set[ShortChannelId]:
        """Every short channel id and local/remote alias of this node's channels."""
        ...

    async def channel_names(self, scid: str) -> set[str]:
        """Every name of the channel known as `scid` (its short channel id and its local and
        remote aliases), `scid` included; just {scid} for a channel lightningd does not know."""
        ...

    async def incoming_htlcs(self) -> set[tuple[str, int]]:
        """(channel scid or alias, htlc id) of every incoming HTLC lightningd still holds
        (one lightningd is removing, failed or fulfilled, is not held)."""
        ...

    async def channel_moves_index(self) -> int:
        """The created index of lightningd's newest channel move (0 if none): moves after it
        are what happens from now on (`incoming_htlc_fate`'s `moves_from`)."""
        ...

    async def incoming_htlc_fate(
        self, scid: str, htlc_id: int, payment_hash: str, moves_from: int = 0
    ) -> HtlcFate:
        """Whether lightningd fulfilled or failed incoming HTLC `htlc_id` of channel `scid`
        (any of its names), from that channel's HTLC list and the channel moves from index
        `moves_from` on (0: all of them)."""
        ...

    async def decode(self, invoice: str) -> dict[str, Any]:
        """lightningd's own decoding of a bolt11 string (raises on an invalid invoice)."""
        ...

    async def sign_invoice(self, unsigned_invoice: str) -> str:
        """Sign a bolt11 (with placeholder signature) with the node key; stores nothing."""
        ...

    async def has_invoice(self, payment_hash: str) -> bool:
        """Whether the node itself has an invoice (in any state) with this payment hash."""
        ...

    async def xpay_waits_for_all_parts(self) -> bool:
        """Whether the payer answers only once every part of a payment is final (CLN:
        `xpay-slow-mode`); the gateway refuses to start without it."""
        ...

    async def developer_mode(self) -> bool:
        """Whether lightningd runs with `--developer` (developer-only commands need it)."""
        ...

    async def pay(self, invoice: str, max_fee: Msat, max_delay: int) -> PaymentOutcome:
        """Pay an invoice. FAILED means no part can still succeed; PENDING means not known yet."""
        ...

    async def payment_status(self, payment_hash: str, xpay_gone: bool = False) -> PaymentOutcome:
        """The current outcome of an earlier payment attempt for this hash (FAILED only when no
        part is in flight and the payer can no longer be sending new ones). `xpay_gone`: the
        caller knows the xpay that sent the parts ended (it died with an earlier lightningd), so
        parts that all failed are final at once."""
        ...

    async def make_secret(self, label: str) -> bytes:
        """A 32-byte secret derived from the node's HSM secret and `label` (stable forever)."""
        ...

    async def sign_message(self, message: str) -> str:
        """zbase32 signature of `message` by the node key."""
        ...

    async def check_message(self, message: str, zbase: str, node_id: str) -> bool:
        """Whether `zbase` is `node_id`'s signature of `message`."""
        ...

    async def create_invoice(self, amount: Msat, label: str, description: str) -> str:
        """A bolt11 invoice of this node stored in lightningd under `label` (the same one again
        for the same label), for settlements between peer gateways."""
        ...
