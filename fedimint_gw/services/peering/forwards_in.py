"""Receiving peer forwards (docs/peer-protocol.md §5, §7): accept, run, answer; or route on.

A forward from a peer is `peer-in:<peer>:<forward id>`: the swap's target half funds the receive
in our federation, then SUCCEEDED + ledger entry, or REFUNDED. A router receives a forward for
another peer and sends its own (`peer-out:<forward id>`, through forward_sender.py), then settles both.
A sender asking about a forward never seen here gets it tombstoned (cancelled, never started).
Every step is written before it runs; every message can be repeated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import InvalidInput, NotFound, PaymentRefused
from fedimint_gw.lightning import bolt11
from fedimint_gw.peer import ledger, wire
from fedimint_gw.peer.errors import CreditExceeded, NoDestination, UnsupportedVersion
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.flow_runs import FlowRuns
from fedimint_gw.services.payments.swap import SwapService, SwapTarget, swap_data
from fedimint_gw.services.peering.credit import CreditLines, Direction
from fedimint_gw.services.peering.forward_sender import (
    CANCELLED,
    MIN_FORWARD_WINDOW,
    ROUTE_MARGIN,
    ForwardSender,
    Outcome,
    forward_id_hash,
    out_data,
)
from fedimint_gw.services.peering.links import PeerService
from fedimint_gw.services.peering.routes import PeerTarget
from fedimint_gw.store import federations as fed_repo
from fedimint_gw.store import payments as pay_repo
from fedimint_gw.store import peers as repo

if TYPE_CHECKING:
    import aiosqlite

Move = tuple[pay_repo.PaymentRecord, pay_repo.PaymentRecord]  # a record before and after a step

INBOUND_DEADLINE = 30.0  # how long a receiver works before answering "pending"


class InboundForwards:
    """Receives forwards from peers, runs them, and routes them on."""

    def __init__(
        self,
        ctx: ServiceContext,
        peers: PeerService,
        swaps: SwapService,
        sender: ForwardSender,
        credit: CreditLines,
    ) -> None:
        self._ctx = ctx
        self._credit = credit
        self._peers = peers
        self._swaps = swaps
        self._sender = sender
        self._runs = FlowRuns(ctx.db, self._drive_in)

    async def on_forward(self, peer: repo.PeerRecord, body: dict[str, Any]) -> dict[str, Any]:
        """Accept (or refuse, having done nothing) a forward, run it, and answer its outcome."""
        forward_id, payment_id = _ids(peer, body)
        async with self._runs.lock(payment_id):
            rec = await pay_repo.get(self._ctx.db.conn, payment_id)
            if rec is None:
                rec = await self._accept(peer, forward_id, payment_id, body)
        return await self._answer(rec, INBOUND_DEADLINE)

    async def on_status(self, peer: repo.PeerRecord, body: dict[str, Any]) -> dict[str, Any]:
        """The outcome of a forward; an unknown id is tombstoned when the sender asks for it."""
        forward_id, payment_id = _ids(peer, body)
        data = _in_data(peer.node_id, forward_id, 0)
        now = self._ctx.clock.now()
        rec = await self._runs.status(payment_id, body.get("cancel_unknown"), PaymentKind.PEER, now, data)
        if rec is None:
            return {"forward_id": forward_id, "state": "unknown"}
        return await self._answer(rec, 0.0)

    async def _accept(
        self, peer: repo.PeerRecord, forward_id: str, payment_id: str, body: dict[str, Any]
    ) -> pay_repo.PaymentRecord:
        invoice, amount, hops = body.get("invoice"), body.get("amount_msat"), body.get("hops", 0)
        if (
            not isinstance(invoice, str)
            or not isinstance(amount, int)
            or isinstance(amount, bool)
            or amount <= 0
        ):
            raise InvalidInput("a forward needs invoice (bolt11) and a positive amount_msat")
        if not isinstance(hops, int) or isinstance(hops, bool):
            raise InvalidInput("hops must be an integer")
        try:
            inv = bolt11.decode(invoice)
        except ValueError as exc:
            raise InvalidInput(f"invalid invoice: {exc}") from None
        if inv.payment_hash.hex() != body.get("payment_hash"):
            raise InvalidInput("payment_hash is not the invoice's")
        if inv.is_expired(self._ctx.clock.now()):
            raise PaymentRefused("the invoice has expired")
        deadline = self._deadline(peer, body.get("deadline"))
        try:
            target = await self._swaps.find_target(inv)
        except PaymentRefused as exc:
            raise NoDestination(exc.message) from None
        # Check the credit line and store the forward (the reservation) in one step (credit.py).
        async with self._credit.lock(peer.node_id, Direction.IN):
            if not await self._credit.may_lend(peer.node_id, amount):
                raise CreditExceeded(
                    f"the forward of {amount} msat would exceed the credit this gateway grants you; "
                    "settle first"
                )
            if target is None:
                route = await self._peers.find_target(inv, exclude=peer.node_id, direct_only=True)
                if route is None or hops != 0:
                    raise NoDestination("the invoice ends at no federation this gateway serves or routes to")
                if deadline - ROUTE_MARGIN - self._ctx.clock.now() < MIN_FORWARD_WINDOW:
                    raise PaymentRefused("the forward's deadline leaves too little time to route it")
                fwd = _Forward(forward_id, payment_id, amount, deadline)
                return await self._accept_routed(peer, fwd, inv, invoice, route)
            return await self._accept_local(
                peer, _Forward(forward_id, payment_id, amount, deadline), inv, target
            )

    def _deadline(self, peer: repo.PeerRecord, raw: object) -> int:
        """A forward's deadline (docs/peer-protocol.md §5), checked: the link must speak a version
        with deadlines, and enough time must be left to complete the forward before it."""
        if peer.version < wire.FORWARD_VERSION:
            raise UnsupportedVersion(
                f"forwards need protocol version {wire.FORWARD_VERSION} (deadlines); this link speaks "
                f"{peer.version}: say hello again"
            )
        if not isinstance(raw, int) or isinstance(raw, bool) or not 0 < raw < 2**40:
            raise InvalidInput("a forward needs a deadline (unix seconds)")
        if raw - self._ctx.clock.now() < MIN_FORWARD_WINDOW:
            raise PaymentRefused(
                f"the forward's deadline {raw} leaves less than {MIN_FORWARD_WINDOW} s to complete it"
            )
        return raw

    async def _accept_local(
        self, peer: repo.PeerRecord, fwd: _Forward, inv: bolt11.Invoice, target: SwapTarget
    ) -> pay_repo.PaymentRecord:
        amount, forward_id, payment_id = fwd.amount, fwd.forward_id, fwd.payment_id
        need = await self._needed(target)
        if amount < need:
            raise PaymentRefused(f"the forward carries {amount} msat; this receive needs {need} msat")
        await self._swaps.check_liquidity(target)
        now = self._ctx.clock.now()
        rec = pay_repo.PaymentRecord(
            payment_id=payment_id,
            kind=PaymentKind.PEER,
            state=PaymentState.HTLC_HELD,
            payment_hash=inv.payment_hash.hex(),
            amount_msat=target.request.amount.value,
            fee_msat=amount - target.request.amount.value,
            target_federation_id=target.federation_id.hex,
            created_at=now,
            updated_at=now,
            data={
                **_in_data(peer.node_id, forward_id, amount, fwd.deadline),
                **swap_data(target),
                "started": time.time(),
            },
        )
        async with self._ctx.db.transaction() as conn:  # the forward and the receive it takes: one write
            if not await self._swaps.take_registration(conn, target.registered_id, payment_id):
                raise PaymentRefused("the invoice is being paid already")
            await pay_repo.save(conn, rec)
        self._ctx.log(f"forward {forward_id} from {peer.node_id[:16]}: {amount} msat accepted", "info")
        return rec

    async def _needed(self, target: SwapTarget) -> int:
        """What a Lightning HTLC for this receive would have to carry into our node."""
        if target.registered_id is not None:
            reg = await pay_repo.get(self._ctx.db.conn, target.registered_id)
            if reg is None:
                raise NoDestination("the registered receive is gone")
            return int(reg.data["invoice_amount_msat"])
        fed = await fed_repo.get(self._ctx.db.conn, target.federation_id)
        if fed is None:
            raise NoDestination("the target federation is not served")
        return target.request.amount.value + fed.fees.fee(target.request.amount).value

    async def _accept_routed(
        self, peer: repo.PeerRecord, fwd: _Forward, inv: bolt11.Invoice, invoice: str, route: PeerTarget
    ) -> pay_repo.PaymentRecord:
        async with self._credit.lock(route.node_id, Direction.OUT):
            nxt = await repo.get(self._ctx.db.conn, route.node_id)
            if nxt is None or nxt.version < wire.FORWARD_VERSION:
                raise NoDestination("the next gateway does not speak a protocol version with deadlines")
            if not await self._credit.may_borrow(route.node_id, fwd.amount):
                raise CreditExceeded("the next peer's credit line cannot carry this forward")
            return await self._store_routed(peer, fwd, inv, invoice, route)

    async def _store_routed(
        self, peer: repo.PeerRecord, fwd: _Forward, inv: bolt11.Invoice, invoice: str, route: PeerTarget
    ) -> pay_repo.PaymentRecord:
        amount, forward_id, payment_id = fwd.amount, fwd.forward_id, fwd.payment_id
        now = self._ctx.clock.now()
        out_id = "r-" + forward_id_hash(f"{peer.node_id}:{forward_id}")
        out_payment = f"peer-out:{out_id}"
        inbound = pay_repo.PaymentRecord(
            payment_id=payment_id,
            kind=PaymentKind.PEER,
            state=PaymentState.HTLC_HELD,
            data={
                **_in_data(peer.node_id, forward_id, amount, fwd.deadline),
                "outbound": out_payment,
                "started": time.time(),
            },
            payment_hash=inv.payment_hash.hex(),
            amount_msat=amount,
            created_at=now,
            updated_at=now,
        )
        target = PeerTarget(route.node_id, amount, route.destination)
        outbound = pay_repo.PaymentRecord(
            payment_id=out_payment,
            kind=PaymentKind.PEER,
            state=PaymentState.HTLC_HELD,
            payment_hash=inv.payment_hash.hex(),
            amount_msat=amount,
            created_at=now,
            updated_at=now,
            data={
                **out_data(target, out_id, 1, fwd.deadline - ROUTE_MARGIN),
                "invoice": invoice,
                "inbound": payment_id,
            },
        )
        async with self._ctx.db.transaction() as conn:
            await pay_repo.save(conn, inbound)
            await pay_repo.save(conn, outbound)
        self._ctx.log(
            f"forward {forward_id} from {peer.node_id[:16]}: routing to {route.node_id[:16]}", "info"
        )
        return inbound

    async def _answer(self, rec: pay_repo.PaymentRecord, wait: float) -> dict[str, Any]:
        rec = await self._runs.settle(rec, wait)
        forward_id = rec.data.get("forward_id")
        if rec.state is PaymentState.SUCCEEDED:
            peer = str(rec.data["peer"])
            return {
                "forward_id": forward_id,
                "state": "succeeded",
                "preimage": rec.preimage,
                "statement": await self._peers.statement(peer),
            }
        if rec.state.terminal:
            state = CANCELLED if rec.data.get("outcome") == CANCELLED else "failed"
            return {"forward_id": forward_id, "state": state, "error": rec.error or ""}
        return {"forward_id": forward_id, "state": "pending"}

    async def _drive_in(self, rec: pay_repo.PaymentRecord) -> pay_repo.PaymentRecord:
        if "outbound" in rec.data:
            return await self._drive_routed(rec)
        if rec.state is PaymentState.HTLC_HELD and not rec.data.get("funding"):
            # The deadline is honoured here, right before the first step that can pay the receiver:
            # once funding may have been submitted, it is finished, never abandoned on a guess.
            deadline = rec.data.get("deadline")
            if isinstance(deadline, int) and self._ctx.clock.now() >= deadline:
                return await self._miss_deadline(rec)
            if not await self._holds_registration(rec):
                return await self._fail_unfunded(
                    rec, "the receive was taken by another payment; nothing was paid"
                )
            rec = await self._ctx.advance(rec, rec.state, data={"funding": time.time()})
        rec = await self._swaps.drive(rec)
        if rec.state is PaymentState.CLAIMING and rec.preimage:
            return await self._record_success_in(rec, str(rec.preimage))
        return await self._ctx.advance(rec, PaymentState.REFUNDED)

    async def _holds_registration(self, rec: pay_repo.PaymentRecord) -> bool:
        """Before funding: the v2 receive this forward pays is this forward's. A forward stored
        before it took the receive in the same write (older databases) takes it now."""
        reg_id = rec.data.get("registered_id")
        async with self._ctx.db.transaction() as conn:
            return await self._swaps.take_registration(conn, str(reg_id) if reg_id else None, rec.payment_id)

    async def _miss_deadline(self, rec: pay_repo.PaymentRecord) -> pay_repo.PaymentRecord:
        """The deadline passed before funding started: nothing was paid, the forward fails (the
        sender refunds its user) and a v2 receive it held is given back to the Lightning path."""
        return await self._fail_unfunded(
            rec, "the forward's deadline passed before it could start; nothing was paid"
        )

    async def _fail_unfunded(self, rec: pay_repo.PaymentRecord, error: str) -> pay_repo.PaymentRecord:
        """A forward that never started funding fails (the sender refunds its user; nothing is
        owed), and a v2 receive it held goes back to the Lightning path: one write."""
        reg_id = rec.data.get("registered_id")
        reg = await pay_repo.get(self._ctx.db.conn, str(reg_id)) if reg_id else None
        self._ctx.log(f"forward {rec.data['forward_id']}: {error}", "info")
        new = self._ctx.moved(rec, PaymentState.FAILED, error=error)
        moves = [(rec, new)]
        if (
            reg is not None
            and reg.state is PaymentState.HTLC_HELD
            and reg.htlc_scid is None
            and reg.data.get("swap") == rec.payment_id
        ):
            moves.append((reg, reg.released(new.updated_at)))
        await self._ctx.save_moves(*moves)
        return new

    async def _record_success_in(
        self, rec: pay_repo.PaymentRecord, preimage: str, *also: Move
    ) -> pay_repo.PaymentRecord:
        """SUCCEEDED, the peer's ledger entry and `also` (the routed forward's outbound half), in
        one write."""
        entry = ledger.Entry(f"forward:{rec.data['forward_id']}", int(rec.data["forward_amount_msat"]))
        new = self._ctx.moved(rec, PaymentState.SUCCEEDED, preimage=preimage)

        async def entry_added(conn: aiosqlite.Connection) -> None:
            await repo.add_entry(conn, str(rec.data["peer"]), entry, new.updated_at)

        await self._ctx.save_moves((rec, new), *also, with_writes=entry_added)
        return new

    async def _drive_routed(self, inbound: pay_repo.PaymentRecord) -> pay_repo.PaymentRecord:
        out = await pay_repo.get(self._ctx.db.conn, str(inbound.data["outbound"]))
        if out is None:
            raise NotFound("the routed forward's outbound half is missing")
        if out.state is PaymentState.HTLC_HELD:
            resolved = await self._sender.resolve(out)
            out = resolved.rec
            if resolved.outcome is Outcome.NOT_STARTED:
                new = self._ctx.moved(
                    inbound, PaymentState.FAILED, error=resolved.reason, data={"outcome": CANCELLED}
                )
                failed_out = self._ctx.moved(out, PaymentState.FAILED, error=resolved.reason)
                await self._ctx.save_moves((out, failed_out), (inbound, new))
                return new
        if out.state is PaymentState.CLAIMING and out.preimage:
            done = self._ctx.moved(out, PaymentState.SUCCEEDED)
            return await self._record_success_in(inbound, str(out.preimage), (out, done))
        if out.state is PaymentState.SUCCEEDED and out.preimage:
            return await self._record_success_in(inbound, str(out.preimage))
        refunded_out = self._ctx.moved(out, PaymentState.REFUNDED)
        new = self._ctx.moved(inbound, PaymentState.REFUNDED, error=out.error)
        await self._ctx.save_moves((out, refunded_out), (inbound, new))
        return new

    async def resume(self) -> None:
        """At start: finish every inbound or routed forward that was cut short."""
        await self._runs.resume(
            lambda rec: rec.kind is PaymentKind.PEER and rec.data.get("direction") == "in"
        )

    async def stop(self) -> None:
        await self._runs.stop()


def _ids(peer: repo.PeerRecord, body: dict[str, Any]) -> tuple[str, str]:
    """The forward id a message names (checked), and the id of its payment record here."""
    forward_id = body.get("forward_id")
    if not wire.is_protocol_id(forward_id) or not isinstance(forward_id, str):
        raise InvalidInput("forward_id must be 1-64 characters of [A-Za-z0-9_-]")
    return forward_id, f"peer-in:{peer.node_id}:{forward_id}"


def _in_data(peer: str, forward_id: str, amount: int, deadline: int | None = None) -> dict[str, Any]:
    data = {"direction": "in", "peer": peer, "forward_id": forward_id, "forward_amount_msat": amount}
    return data if deadline is None else {**data, "deadline": deadline}


@dataclass(frozen=True)
class _Forward:
    """An inbound forward being accepted: its ids, amount and deadline."""

    forward_id: str
    payment_id: str
    amount: int
    deadline: int
