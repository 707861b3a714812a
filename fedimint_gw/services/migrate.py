"""`fedimint-migrate`: move the gateway's own ecash from federation A to federation B.

A swap on this gateway cannot do it: the gateway would be both payer and payee, spending ecash
in A and in B and getting both back. Value only changes federation when somebody takes A's
ecash and gives B's. That counterparty is a peer gateway serving both federations, and the
exchange runs on its swap pricing (the pair fee it charges, docs/peer-protocol.md §10).

The amount moves in chunks no larger than the credit this gateway grants the peer (the peer
holds one chunk of ours before it pays), each one (payment kind MIGRATE, id `migrate:<id>`):
    spend:   our A notes for the chunk (operation id derived from the chunk: the same notes again)
    offer:   an `exchange` request may have been sent; only the peer's answer decides what happened
    take:    notes from the peer (B, or A back if it had to refund) stored, then reissued into ours
    reclaim: the peer never took our notes: reissue them back into our own A ecash
A refusal before the peer started, or an exchange it never saw (`exchange_status` tombstones
it), ends the migration with our notes reclaimed. Every step is written before it runs and is
idempotent, so a crash anywhere resumes at start.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import (
    FederationRejected,
    FederationUnreachable,
    GatewayError,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    NotReady,
)
from fedimint_gw.peer.client import Link
from fedimint_gw.peer.errors import NOT_STARTED, PeerOutcomeUnknown, PeerRefused, PeerUnreachable
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.exchange import ExchangeTerms
from fedimint_gw.services.peering import PeerService
from fedimint_gw.store import payments as pay_repo
from fedimint_gw.store import peers as peer_repo

DEFAULT_MAX_FEE_PPM = 10_000  # without max_fee_msat, the quoted fees may take at most 1 %,
DEFAULT_MAX_FEE_FLOOR = 10_000  # or 10 sat for small amounts
COMMAND_WAIT = 120.0  # the command answers when done, or with progress after this long
EXCHANGE_TIMEOUT = 60.0
RETRY_PAUSE = 2.0
MAX_PAUSE = 30.0  # the longest wait between two questions to the peer
WAIT_WARN = 600  # after this long without an answer, every question is logged at warn


@dataclass(frozen=True)
class Plan:
    """A migration before it starts: the peer, its terms, and the chunks."""

    peer: str
    terms: ExchangeTerms
    chunk_msat: int
    chunks: int
    fee_msat: int


class MigrationService:
    """Plans, runs and resumes migrations of the gateway's own ecash."""

    def __init__(self, ctx: ServiceContext, peers: PeerService, wait: float = COMMAND_WAIT) -> None:
        self._ctx = ctx
        self._peers = peers
        self._wait = wait
        self._tasks: dict[str, asyncio.Task[pay_repo.PaymentRecord]] = {}
        self._planning = asyncio.Lock()  # one plan-and-record at a time: one migration per peer

    # ----- the command -----------------------------------------------------------------
    async def migrate(
        self,
        from_federation: object,
        to_federation: object,
        amount_msat: object,
        peer: object,
        max_fee: object,
    ) -> dict[str, Any]:
        """Check everything, record the migration, run it; answer when done or with progress."""
        try:
            source = FederationId.parse(from_federation)
            target = FederationId.parse(to_federation)
            amount = Msat.parse(amount_msat).value
            cap = None if max_fee in (None, "") else Msat.parse(max_fee).value
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if source == target:
            raise InvalidInput("from_federation and to_federation must differ")
        if amount <= 0:
            raise InvalidInput("amount_msat must be positive")
        async with self._planning:
            wanted = None if peer in (None, "") else str(peer)
            rec = await self._prepare(source, target, amount, wanted, cap)
        task = self._start(rec)
        done, _ = await asyncio.wait({task}, timeout=self._wait)
        if task in done and not task.cancelled() and task.exception() is None:
            rec = task.result()
        else:
            rec = await pay_repo.get(self._ctx.db.conn, rec.payment_id) or rec
        return describe(rec)

    async def _prepare(
        self, source: FederationId, target: FederationId, amount: int, peer: str | None, cap: int | None
    ) -> pay_repo.PaymentRecord:
        """Everything checked, then the migration recorded (nothing changes on a refusal)."""
        src = self._ctx.federations.client(source)
        self._ctx.federations.client(target)
        plan = await self._plan(source, target, amount, peer)
        default = max(DEFAULT_MAX_FEE_FLOOR, amount * DEFAULT_MAX_FEE_PPM // 1_000_000)
        limit = cap if cap is not None else default
        if plan.fee_msat > limit:
            raise InvalidInput(
                f"peer {plan.peer[:16]} asks {plan.fee_msat} msat in fees for {plan.chunks} exchange(s), "
                f"more than max_fee_msat={limit}; pass max_fee_msat={plan.fee_msat} to accept"
            )
        need = amount + plan.chunks * plan.terms.tx_fee_source_msat
        have = (await src.balance()).value
        if have < need:
            raise InsufficientFunds(
                f"the gateway holds {have} msat of ecash in {source.short()}; moving {amount} msat "
                f"needs {need} msat (with the transaction fees)"
            )
        return await self._record(source, target, amount, plan)

    async def _plan(
        self, source: FederationId, target: FederationId, amount: int, wanted: str | None
    ) -> Plan:
        """Pick the peer (the cheapest that serves both federations) and cut the amount in chunks."""
        peers = [
            p
            for p in await peer_repo.all_peers(self._ctx.db.conn)
            if p.state is peer_repo.PeerState.ACTIVE and _serves(p, source) and _serves(p, target)
        ]
        if wanted is not None:
            peers = [p for p in peers if p.node_id == wanted]
            if not peers:
                raise InvalidInput(
                    f"{wanted[:16]} is not an active peer serving both {source.short()} and {target.short()}"
                )
        running = {str(r.data.get("peer")): r.payment_id for r in await self._running()}
        busy = [f"{running[p.node_id]} through {p.node_id[:16]}" for p in peers if p.node_id in running]
        peers = [p for p in peers if p.node_id not in running]
        if busy and not peers:
            raise InvalidInput(
                f"a migration is already running ({', '.join(busy)}); one per peer at a time, so that "
                "the peer never holds more of ours than the credit granted to it"
            )
        if not peers:
            raise InvalidInput(
                f"no active peer gateway serves both {source.short()} and {target.short()}: "
                "a migration needs one to take the ecash of the first and give ecash of the second "
                "(a swap through this gateway would pay itself). Add such a peer with fedimint-peer-add"
            )
        plans: list[Plan] = []
        refusals: list[str] = []
        for p in peers:
            try:
                plans.append(await self._quote(p, source, target, amount))
            except GatewayError as exc:
                refusals.append(f"{p.node_id[:16]}: {exc.message}")
        if not plans:
            raise InvalidInput("no peer can take this migration: " + "; ".join(refusals))
        return min(plans, key=lambda pl: pl.fee_msat)

    async def _quote(
        self, peer: peer_repo.PeerRecord, source: FederationId, target: FederationId, amount: int
    ) -> Plan:
        conn = self._ctx.db.conn
        owed = max(0, await peer_repo.balance(conn, peer.node_id))  # what the peer owes us already
        lent = sum((await peer_repo.forwards_in_flight(conn, peer.node_id, "in")).values())
        room = peer.credit_limit_msat - owed - lent
        if room <= 0:
            raise InvalidInput(
                f"no credit left for the peer ({peer.credit_limit_msat} msat granted, {owed + lent} in "
                "use): it holds one chunk of ours during each exchange, so grant it more "
                "(fedimint-peer-add ... credit_limit_msat) or settle first"
            )
        link = Link(str(peer.url), peer.node_id, peer.peer_key)
        body = {"from_federation": source.hex, "to_federation": target.hex}
        answer = await self._peers.client.call(link, "exchange_quote", body)
        try:
            terms = ExchangeTerms.from_json(answer)
        except ValueError as exc:
            raise InvalidInput(f"the peer's quote is malformed: {exc}") from None
        available = answer.get("available_msat")
        if isinstance(available, bool) or not isinstance(available, int) or available <= 0:
            raise InsufficientFunds(f"the peer holds no ecash to give in {target.short()}")
        biggest = min(amount, room, available)
        chunks = -(-amount // biggest)
        chunk = -(-amount // chunks)
        sizes = [min(chunk, amount - i * chunk) for i in range(chunks)]
        if min(sizes) <= _total_fee(terms, min(sizes)):
            raise InvalidInput(
                f"chunks of {min(sizes)} msat are too small to exchange: the fees are "
                f"{_total_fee(terms, min(sizes))} msat"
            )
        return Plan(peer.node_id, terms, chunk, chunks, sum(_total_fee(terms, s) for s in sizes))

    async def _running(self) -> list[pay_repo.PaymentRecord]:
        return [
            r
            for r in await pay_repo.unfinished(self._ctx.db.conn)
            if r.kind is PaymentKind.MIGRATE and r.data.get("direction") == "out"
        ]

    async def _record(
        self, source: FederationId, target: FederationId, amount: int, plan: Plan
    ) -> pay_repo.PaymentRecord:
        now = self._ctx.clock.now()
        rec = pay_repo.PaymentRecord(
            payment_id=f"migrate:{secrets.token_hex(8)}",
            kind=PaymentKind.MIGRATE,
            state=PaymentState.PAYING,
            payment_hash="",
            amount_msat=amount,
            created_at=now,
            updated_at=now,
            federation_id=source.hex,
            target_federation_id=target.hex,
            data={
                "direction": "out",
                "peer": plan.peer,
                "terms": plan.terms.to_json(),
                "chunk_msat": plan.chunk_msat,
                "chunks": plan.chunks,
                "chunk": 0,
                "step": "spend",
                "moved_msat": 0,
                "out_msat": 0,
                "back_msat": 0,
                "received_msat": 0,
                "lost_msat": 0,
                "started": time.time(),
            },
        )
        async with self._ctx.db.transaction() as conn:
            await pay_repo.save(conn, rec)
        self._ctx.log(
            f"migration {rec.payment_id}: {amount} msat {source.short()} -> {target.short()} through peer "
            f"{plan.peer[:16]} in {plan.chunks} chunk(s), quoted fees {plan.fee_msat} msat",
            "info",
        )
        return rec

    # ----- running ---------------------------------------------------------------------
    def _start(self, rec: pay_repo.PaymentRecord) -> asyncio.Task[pay_repo.PaymentRecord]:
        task = asyncio.create_task(self._drive(rec))
        self._tasks[rec.payment_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(rec.payment_id, None))
        return task

    async def _drive(self, rec: pay_repo.PaymentRecord) -> pay_repo.PaymentRecord:
        while rec.state is PaymentState.PAYING:
            try:
                rec = await self._step(rec)
            except (FederationUnreachable, NotReady) as exc:
                self._ctx.log(f"migration {rec.payment_id}: waiting ({exc.message})", "info")
                await asyncio.sleep(RETRY_PAUSE)
            except GatewayError as exc:  # unexpected: keep the record, try again later
                self._ctx.log(f"migration {rec.payment_id}: {exc.message}; retrying", "error")
                await asyncio.sleep(RETRY_PAUSE * 5)
        return rec

    async def _step(self, rec: pay_repo.PaymentRecord) -> pay_repo.PaymentRecord:
        step = rec.data["step"]
        if step == "spend":
            if int(rec.data["moved_msat"]) >= rec.amount_msat:
                self._ctx.log(f"migration {rec.payment_id}: done, {_progress(rec)}", "info")
                return await self._ctx.advance(rec, PaymentState.SUCCEEDED)
            try:
                await self._notes(rec)
            except (InsufficientFunds, FederationRejected) as exc:
                return await self._stop(rec, exc.message)
            spent = int(rec.data["out_msat"]) + _chunk(rec) + _terms(rec).tx_fee_source_msat
            rec = await self._ctx.advance(rec, rec.state, data={"step": "offer", "out_msat": spent})
            return await self._offer(rec, first=True)
        if step == "offer":
            return await self._offer(rec, first=False)
        if step == "take":
            return await self._take(rec)
        return await self._reclaim(rec)

    async def _notes(self, rec: pay_repo.PaymentRecord) -> str:
        """This chunk's notes of the source federation (the same notes on every call)."""
        client = self._ctx.federations.client(FederationId(str(rec.federation_id)))
        return (await client.spend_ecash(Msat(_chunk(rec)), f"migrate-{_exchange_id(rec)}")).notes

    async def _offer(self, rec: pay_repo.PaymentRecord, first: bool) -> pay_repo.PaymentRecord:
        """Send the exchange (first) or ask about it, and act on the peer's answer."""
        peer = str(rec.data["peer"])
        try:
            link = await self._peers.link(peer)
            if first:
                body = {
                    "exchange_id": _exchange_id(rec),
                    "from_federation": rec.federation_id,
                    "to_federation": rec.target_federation_id,
                    "amount_msat": _chunk(rec),
                    "fee_msat": _terms(rec).fee(_chunk(rec)),
                    "notes": await self._notes(rec),
                }
                answer = await self._peers.client.call(link, "exchange", body, EXCHANGE_TIMEOUT)
            else:
                body = {"exchange_id": _exchange_id(rec), "cancel_unknown": True}
                answer = await self._peers.client.call(link, "exchange_status", body)
        except (PeerUnreachable, NotFound) as exc:
            if first:
                return await self._ctx.advance(
                    rec, rec.state, data={"step": "reclaim", "reason": exc.message}
                )
            return await self._unknown(rec, exc.message)
        except PeerRefused as exc:
            # Only the peer's own signed refusal proves it did nothing; anything else is asked about.
            if first and exc.peer_code in NOT_STARTED and exc.signed and exc.status < 500:
                return await self._ctx.advance(
                    rec, rec.state, data={"step": "reclaim", "reason": exc.message}
                )
            return await self._unknown(rec, exc.message)
        except PeerOutcomeUnknown as exc:
            return await self._unknown(rec, exc.message)
        state = answer.get("state")
        notes = answer.get("notes")
        if state in ("succeeded", "refunded") and isinstance(notes, str) and notes:
            return await self._received(rec, notes, str(state), str(answer.get("error", "")))
        if state in ("failed", "cancelled"):
            why = f"the peer did not take our notes ({state}): {answer.get('error', '')}"
            return await self._ctx.advance(rec, rec.state, data={"step": "reclaim", "reason": why})
        return await self._unknown(rec, f"the exchange is {state}")

    async def _received(
        self, rec: pay_repo.PaymentRecord, notes: str, state: str, error: str
    ) -> pay_repo.PaymentRecord:
        """Check the peer's notes before taking them: whose they are, their worth, never seen."""
        source, target = FederationId(str(rec.federation_id)), FederationId(str(rec.target_federation_id))
        try:
            summary = await self._ctx.federations.client(target).inspect_ecash(notes)
        except InvalidInput as exc:
            return await self._lost(rec, f"the peer answered {state} with unreadable notes ({exc.message})")
        into = {target.hex: "target", source.hex: "source"}.get(summary.federation_id)
        if into is None:
            return await self._lost(rec, f"the peer's notes belong to federation {summary.federation_id[:8]}")
        if into == "source":
            summary = await self._ctx.federations.client(source).inspect_ecash(notes)
        if summary.received:
            return await self._lost(rec, "the peer answered with notes this gateway had already received")
        expected = _expected(rec)
        why = "" if state == "succeeded" else f"the peer gave our ecash back: {error}"
        if into == "target" and summary.amount.value < expected:
            why = f"the peer gave {summary.amount.value} msat of notes for a chunk quoted at {expected} msat"
        elif into == "source" and not why:
            why = "the peer answered with notes of the source federation"
        return await self._ctx.advance(
            rec,
            rec.state,
            data={"step": "take", "notes_in": notes, "into": into, "reason": why, "waiting": ""},
        )

    async def _lost(self, rec: pay_repo.PaymentRecord, why: str) -> pay_repo.PaymentRecord:
        """The peer kept this chunk and gave nothing usable back: record the loss and stop."""
        text = f"{why}: the chunk of {_chunk(rec)} msat is lost to peer {str(rec.data['peer'])[:16]}"
        self._ctx.log(f"migration {rec.payment_id}: {text}", "error")
        return await self._stop(rec, text, notes_in="", lost_msat=int(rec.data["lost_msat"]) + _chunk(rec))

    async def _unknown(self, rec: pay_repo.PaymentRecord, why: str) -> pay_repo.PaymentRecord:
        """Not known yet: remember why (shown by the command and fedimint-payments), wait, ask again."""
        now = self._ctx.clock.now()
        if rec.data.get("waiting") != why:
            since = rec.data.get("waiting_since") if rec.data.get("waiting") else None
            rec = await self._ctx.advance(
                rec, rec.state, data={"waiting": why, "waiting_since": since or now}
            )
        waited = now - int(rec.data.get("waiting_since") or now)
        level = "warn" if waited >= WAIT_WARN else "info"
        self._ctx.log(
            f"migration {rec.payment_id}: outcome not known for {waited} s ({why}); asking the peer", level
        )
        await asyncio.sleep(min(MAX_PAUSE, RETRY_PAUSE + waited / 10))
        return rec

    async def _take(self, rec: pay_repo.PaymentRecord) -> pay_repo.PaymentRecord:
        """Reissue the peer's notes into our own: the chunk arrived (or came back)."""
        into_target = rec.data["into"] == "target"
        fid = FederationId(str(rec.target_federation_id if into_target else rec.federation_id))
        try:
            got = (await self._ctx.federations.client(fid).receive_ecash(str(rec.data["notes_in"]))).value
        except (InvalidInput, FederationRejected) as exc:
            return await self._lost(rec, f"the peer's notes were refused by {fid.short()} ({exc.message})")
        if not into_target:
            back = int(rec.data["back_msat"]) + got
            return await self._stop(rec, str(rec.data["reason"]), notes_in="", back_msat=back)
        moved = int(rec.data["moved_msat"]) + _chunk(rec)
        received = int(rec.data["received_msat"]) + got
        if rec.data.get("reason"):  # the peer paid short: keep what came, stop trusting it
            short = max(0, _expected(rec) - _terms(rec).tx_fee_target_msat - got)
            self._ctx.log(f"migration {rec.payment_id}: {rec.data['reason']}", "error")
            return await self._stop(
                rec,
                str(rec.data["reason"]),
                notes_in="",
                moved_msat=moved,
                received_msat=received,
                lost_msat=int(rec.data["lost_msat"]) + short,
                chunk=int(rec.data["chunk"]) + 1,
            )
        rec = await self._ctx.advance(
            rec,
            rec.state,
            fee_msat=_fee(rec, received=received),
            data={
                "step": "spend",
                "notes_in": "",
                "chunk": int(rec.data["chunk"]) + 1,
                "moved_msat": moved,
                "received_msat": received,
            },
        )
        self._ctx.log(f"migration {rec.payment_id}: {_progress(rec)}", "info")
        return rec

    async def _reclaim(self, rec: pay_repo.PaymentRecord) -> pay_repo.PaymentRecord:
        """The peer never took this chunk's notes: reissue them into our own again."""
        client = self._ctx.federations.client(FederationId(str(rec.federation_id)))
        reason = str(rec.data.get("reason", ""))
        try:
            got = (await client.receive_ecash(await self._notes(rec))).value
        except (InvalidInput, FederationRejected) as exc:
            return await self._lost(rec, f"{reason}; reclaiming our notes failed ({exc.message})")
        return await self._stop(rec, reason, back_msat=int(rec.data["back_msat"]) + got)

    async def _stop(self, rec: pay_repo.PaymentRecord, reason: str, **data: Any) -> pay_repo.PaymentRecord:
        """End the migration early: REFUNDED if nothing moved, else FAILED with what did."""
        rec = rec.advance(rec.state, rec.updated_at, data=data)
        moved = int(rec.data["moved_msat"])
        fee = _fee(rec)
        state = PaymentState.REFUNDED if moved == 0 else PaymentState.FAILED
        error = f"{reason} (moved {moved} of {rec.amount_msat} msat)"
        self._ctx.log(f"migration {rec.payment_id} stopped: {error}", "warn")
        return await self._ctx.advance(rec, state, error=error, fee_msat=fee, data={"step": "stopped"})

    async def resume(self) -> None:
        """At start: finish every migration a crash cut short."""
        for rec in await pay_repo.unfinished(self._ctx.db.conn):
            mine = rec.kind is PaymentKind.MIGRATE and rec.data.get("direction") == "out"
            if mine and rec.payment_id not in self._tasks:
                self._start(rec)

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()


def describe(rec: pay_repo.PaymentRecord) -> dict[str, Any]:
    """A migration as the command and `fedimint-payments` show it."""
    running = rec.state is PaymentState.PAYING
    body: dict[str, Any] = {
        "migration_id": rec.payment_id,
        "state": "running" if running else rec.state.value,
        "from_federation": rec.federation_id,
        "to_federation": rec.target_federation_id,
        "peer": rec.data.get("peer"),
        "amount_msat": rec.amount_msat,
        "moved_msat": rec.data.get("moved_msat", 0),
        "received_msat": rec.data.get("received_msat", 0),
        "fee_msat": rec.fee_msat,
        "chunks": rec.data.get("chunks"),
        "chunks_done": rec.data.get("chunk", 0),
    }
    if rec.data.get("lost_msat"):
        body["lost_msat"] = rec.data["lost_msat"]
    if running and rec.data.get("waiting"):
        body["waiting"] = rec.data["waiting"]
        body["waiting_since"] = rec.data.get("waiting_since")
    if rec.error:
        body["error"] = rec.error
    return body


def _serves(peer: peer_repo.PeerRecord, fid: FederationId) -> bool:
    return any(f.get("federation_id") == fid.hex for f in peer.announce.get("federations", []))


def _terms(rec: pay_repo.PaymentRecord) -> ExchangeTerms:
    return ExchangeTerms.from_json(rec.data["terms"])


def _chunk(rec: pay_repo.PaymentRecord) -> int:
    return min(int(rec.data["chunk_msat"]), rec.amount_msat - int(rec.data["moved_msat"]))


def _total_fee(terms: ExchangeTerms, chunk: int) -> int:
    """Everything a chunk costs: the peer's quote plus our own spend and reissue."""
    return terms.fee(chunk) + terms.tx_fee_source_msat + terms.tx_fee_target_msat


def _expected(rec: pay_repo.PaymentRecord) -> int:
    """What the peer's notes for the current chunk must be worth (before our reissue)."""
    return _chunk(rec) - _terms(rec).fee(_chunk(rec))


def _fee(rec: pay_repo.PaymentRecord, received: int | None = None) -> int:
    """What the migration cost so far: value out of A, less what came back or arrived, less losses."""
    got = int(rec.data["received_msat"]) if received is None else received
    out, back, lost = (int(rec.data.get(k, 0)) for k in ("out_msat", "back_msat", "lost_msat"))
    return out - back - got - lost


def _exchange_id(rec: pay_repo.PaymentRecord) -> str:
    return f"{rec.payment_id.split(':', 1)[1]}-{rec.data['chunk']}"


def _progress(rec: pay_repo.PaymentRecord) -> str:
    return (
        f"{rec.data['moved_msat']} of {rec.amount_msat} msat moved "
        f"({rec.data['chunk']}/{rec.data['chunks']} chunks), {rec.data['received_msat']} msat arrived"
    )
