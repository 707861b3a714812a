"""Sending one forward to a peer until its outcome is known (docs/peer-protocol.md §5).

Used for a user's send (forwards.py) and for the second half of a routed forward
(forwards_in.py). `sent` is written before the first request; after it, an unknown outcome is
resolved by asking the peer (`forward_status`, which tombstones an id it never saw), never by
guessing. A success records the ledger entry with the preimage in one transaction.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fedimint_gw.domain.payment import PaymentState
from fedimint_gw.errors import NotFound
from fedimint_gw.peer import ledger, wire
from fedimint_gw.peer.client import Link
from fedimint_gw.peer.errors import PeerOutcomeUnknown, PeerRefused, PeerUnreachable, proves_not_started
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.peering.links import PeerService
from fedimint_gw.services.peering.routes import PeerTarget
from fedimint_gw.store import payments as pay_repo
from fedimint_gw.store import peers as repo

FORWARD_TIMEOUT = 60.0  # one forward request; after it the outcome is asked for
# Deadlines (docs/peer-protocol.md §5): the latest unix time at which the receiver may start
# completing a forward. It comes from the user's contract timelock less the gateway's margin.
MAX_FORWARD_WINDOW = 600  # seconds: a forward completes in seconds; never offer more than this
SECONDS_PER_BLOCK_FLOOR = 60  # blocks are assumed to come at most this fast when turning blocks into time
MIN_FORWARD_WINDOW = 10  # seconds: a receiver refuses a forward with less time left, a sender does not send
ROUTE_MARGIN = 10  # seconds a router keeps between its inbound deadline and the one it forwards with
STATUS_PAUSE = 2.0
CANCELLED = "cancelled"  # the state of a forward the receiver never started
AfterDebt = Callable[[str], Awaitable[None]]  # told the peer's node id when a forward added to our debt


class Outcome(enum.Enum):
    """What became of a forward at the peer."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_STARTED = "not_started"


@dataclass(frozen=True)
class Resolved:
    """A forward's record after its outcome is known, and why when it did not start."""

    rec: pay_repo.PaymentRecord
    outcome: Outcome
    reason: str = ""


class ForwardSender:
    """Sends forwards to peers and learns their outcomes."""

    def __init__(self, ctx: ServiceContext, peers: PeerService, after_debt: AfterDebt | None = None) -> None:
        self._ctx = ctx
        self._peers = peers
        self._after_debt = after_debt

    async def resolve(self, rec: pay_repo.PaymentRecord) -> Resolved:
        """Send the forward (or ask about it) until its outcome is known.

        Only the very first request can prove that nothing started (unreachable or refused):
        once a forward may have been delivered (`sent` is written before the request), only the
        peer's answer about it decides."""
        peer, forward_id = str(rec.data["peer"]), str(rec.data["forward_id"])
        while True:
            link = await self._link(peer)
            first = not rec.data.get("sent")
            try:
                if first:
                    if link is None:
                        return Resolved(rec, Outcome.NOT_STARTED, "the peer is no longer active")
                    deadline = rec.data.get("deadline")
                    if not isinstance(deadline, int) or self._ctx.clock.now() > deadline - MIN_FORWARD_WINDOW:
                        # Never sent, and too late to: the user is refunded (Lightning would be late too).
                        error = "the forward's deadline passed before it was sent"
                        rec = await self._ctx.advance(rec, PaymentState.CANCELLING, error=error)
                        return Resolved(rec, Outcome.FAILED, error)
                    rec = await self._ctx.advance(rec, rec.state, data={"sent": time.time()})
                    body = {
                        "forward_id": forward_id,
                        "invoice": rec.data["invoice"],
                        "payment_hash": rec.payment_hash,
                        "amount_msat": int(rec.data["forward_amount_msat"]),
                        "hops": int(rec.data.get("hops", 0)),
                        "deadline": deadline,
                    }
                    answer = await self._peers.client.call(link, "forward", body, FORWARD_TIMEOUT)
                else:
                    if link is None:
                        raise PeerOutcomeUnknown("the peer has no known address or key")
                    body = {"forward_id": forward_id, "cancel_unknown": True}
                    answer = await self._peers.client.call(link, "forward_status", body)
            except PeerUnreachable as exc:
                if first:
                    return Resolved(rec, Outcome.NOT_STARTED, exc.message)
                await self._unknown(rec, exc.message)
                continue
            except PeerRefused as exc:
                if first and proves_not_started(exc):
                    return Resolved(rec, Outcome.NOT_STARTED, exc.message)
                await self._unknown(rec, exc.message)
                continue
            except (PeerOutcomeUnknown, NotFound) as exc:
                await self._unknown(rec, exc.message)
                continue
            state = answer.get("state")
            if state == "succeeded":
                preimage = str(answer.get("preimage", ""))
                if _hash_hex(preimage) == rec.payment_hash:
                    await self._peers.keep_statement(peer, answer.get("statement"))
                    return Resolved(await self._record_success_out(rec, preimage), Outcome.SUCCEEDED)
                self._ctx.log(
                    f"forward {forward_id}: the peer's preimage does not match; asking again", "error"
                )
            elif state == "failed":
                error = f"the peer gateway could not complete the payment: {answer.get('error', '')}"
                rec = await self._ctx.advance(rec, PaymentState.CANCELLING, error=error)
                return Resolved(rec, Outcome.FAILED)
            elif state == CANCELLED:
                return Resolved(rec, Outcome.NOT_STARTED, "the peer never started the forward")
            await self._unknown(rec, f"the forward is {state}")

    async def _unknown(self, rec: pay_repo.PaymentRecord, why: str) -> None:
        """The outcome is not known yet: wait, then ask the peer again."""
        self._ctx.log(
            f"forward {rec.data['forward_id']}: outcome not known yet ({why}); asking the peer", "info"
        )
        await asyncio.sleep(STATUS_PAUSE)

    async def _record_success_out(self, rec: pay_repo.PaymentRecord, preimage: str) -> pay_repo.PaymentRecord:
        peer = str(rec.data["peer"])
        entry = ledger.Entry(f"forward:{rec.data['forward_id']}", -int(rec.data["forward_amount_msat"]))
        new = rec.advance(PaymentState.CLAIMING, self._ctx.clock.now(), preimage=preimage)
        async with self._ctx.db.transaction() as conn:
            await repo.add_entry(conn, peer, entry, new.updated_at)
            await pay_repo.save(conn, new)
        if self._after_debt is not None:
            await self._after_debt(peer)
        return new

    async def _link(self, node_id: str) -> Link | None:
        rec = await repo.get(self._ctx.db.conn, node_id)
        if rec is None or not rec.url or rec.peer_key is None:
            return None
        return Link(rec.url, rec.node_id, rec.peer_key)


def out_data(target: PeerTarget, forward_id: str, hops: int, deadline: int) -> dict[str, Any]:
    """The data of an outbound forward's payment record (`hops` is 1 for a routed one)."""
    return {
        "direction": "out",
        "peer": target.node_id,
        "destination": target.destination,
        "forward_id": forward_id,
        "forward_amount_msat": target.amount_msat,
        "hops": hops,
        "deadline": deadline,
    }


def forward_deadline(now: int, blocks_left: int) -> int | None:
    """The deadline of a forward for a user's contract that leaves `blocks_left` blocks before
    its timelock, less the gateway's own margin; None when that is too little time to forward.
    Blocks are turned into time at the fastest plausible rate, less the peers' clock tolerance."""
    window = min(MAX_FORWARD_WINDOW, blocks_left * SECONDS_PER_BLOCK_FLOOR - wire.TIME_WINDOW)
    return now + window if window >= 2 * MIN_FORWARD_WINDOW else None


def forward_id_hash(text: str) -> str:
    """A forward id's hash part, derived from what the forward stands for (the same every time)."""
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _hash_hex(preimage_hex: str) -> str:
    try:
        return hashlib.sha256(bytes.fromhex(preimage_hex)).hexdigest()
    except ValueError:
        return ""
