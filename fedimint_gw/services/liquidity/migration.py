"""`fedimint-migrate`: move the gateway's own ecash from federation A to federation B.

A swap on this gateway cannot do it: the gateway would be both payer and payee, spending ecash
in A and in B and getting both back. Value only changes federation when somebody takes A's
ecash and gives B's. That counterparty is a peer gateway serving both federations, and the
exchange runs on its swap pricing (the pair fee it charges, docs/peer-protocol.md §10).

This module checks and plans a migration (the cheapest peer serving both federations, its
quote against `max_fee_msat`, chunks no larger than the credit still granted to the peer, one
migration per peer at a time), records it, and hands it to migrate_chunks.ChunkRunner, which
moves the chunks. Interrupted migrations resume at start.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import GatewayError, InsufficientFunds, InvalidInput
from fedimint_gw.peer.client import Link
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.flow_runs import FlowRuns
from fedimint_gw.services.liquidity.exchange import ExchangeTerms, exchange_terms, migrate_record
from fedimint_gw.services.liquidity.migration_chunks import ChunkCosts, ChunkRunner
from fedimint_gw.services.peering.links import PeerService
from fedimint_gw.store import payments as pay_repo
from fedimint_gw.store import peers as peer_repo

DEFAULT_MAX_FEE_PPM = 10_000  # without max_fee_msat, the quoted fees may take at most 1 %,
DEFAULT_MAX_FEE_FLOOR = 10_000  # or 10 sat for small amounts
COMMAND_WAIT = 120.0  # the command answers when done, or with progress after this long


@dataclass(frozen=True)
class Plan:
    """A migration before it starts: the peer, its terms, the chunks and what each size costs."""

    peer: str
    terms: ExchangeTerms
    chunk_msat: int
    chunks: int
    fee_msat: int
    costs: dict[int, ChunkCosts]  # by chunk size (the last chunk may be smaller)
    spend_msat: int  # what our spends of all chunks cost on top of the amount


class MigrationService:
    """Plans, runs and resumes migrations of the gateway's own ecash."""

    def __init__(self, ctx: ServiceContext, peers: PeerService, wait: float = COMMAND_WAIT) -> None:
        self._ctx = ctx
        self._peers = peers
        self._wait = wait
        self._runs = FlowRuns(ctx.db, ChunkRunner(ctx, peers).run)
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
        rec = await self._runs.settle(rec, self._wait)
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
        need = amount + plan.spend_msat
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
        if not private_link(str(peer.url)):
            raise InvalidInput(
                f"its URL {peer.url} is plain http to another host: ecash notes are bearer money and "
                "must not cross a network in clear text; give the peer an https:// URL"
            )
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
        body = {"from_federation": source.hex, "to_federation": target.hex, "amount_msat": amount}
        answer = await self._peers.client.call(link, "exchange_quote", body)
        try:
            quoted = ExchangeTerms.from_json(answer)
        except ValueError as exc:
            raise InvalidInput(f"the peer's quote is malformed: {exc}") from None
        available = answer.get("available_msat")
        if isinstance(available, bool) or not isinstance(available, int) or available <= 0:
            raise InsufficientFunds(f"the peer holds no ecash to give in {target.short()}")
        biggest = min(amount, room, available)
        chunks = -(-amount // biggest)
        chunk = -(-amount // chunks)
        sizes = [min(chunk, amount - i * chunk) for i in range(chunks)]
        costs = {s: await self._costs(quoted, source, target, s) for s in set(sizes)}
        small = min(sizes)
        if small <= costs[small].total(small):
            raise InvalidInput(
                f"chunks of {small} msat are too small to exchange: the fees are "
                f"{costs[small].total(small)} msat"
            )
        fee = sum(costs[s].total(s) for s in sizes)
        spend = sum(costs[s].spend_msat for s in sizes)
        return Plan(peer.node_id, costs[chunk].terms, chunk, chunks, fee, costs, spend)

    async def _costs(
        self, quoted: ExchangeTerms, source: FederationId, target: FederationId, size: int
    ) -> ChunkCosts:
        """A chunk of `size`: the peer's pair fee, and every federation fee priced from the
        federations' public config (the peer prices its side the same way; its quote's flat
        figures are for the whole amount and serve older records only)."""
        terms = await exchange_terms(self._ctx, quoted.fees, source, target, size)
        spend = (await self._ctx.federations.client(source).ecash_fees(Msat(size))).spend.value
        give = size - terms.fee(size)
        reissue = (await self._ctx.federations.client(target).ecash_fees(Msat(max(0, give)))).reissue.value
        return ChunkCosts(terms, spend, reissue)

    async def _running(self) -> list[pay_repo.PaymentRecord]:
        return [
            r
            for r in await pay_repo.unfinished(self._ctx.db.conn)
            if r.kind is PaymentKind.MIGRATE and r.data.get("direction") == "out"
        ]

    async def _record(
        self, source: FederationId, target: FederationId, amount: int, plan: Plan
    ) -> pay_repo.PaymentRecord:
        rec = migrate_record(
            f"migrate:{secrets.token_hex(8)}",
            PaymentState.PAYING,
            (source, target),
            amount,
            self._ctx.clock.now(),
            data={
                "direction": "out",
                "peer": plan.peer,
                "terms": plan.terms.to_json(),
                "chunk_costs": {str(s): c.to_json() for s, c in plan.costs.items()},
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
    async def resume(self) -> None:
        """At start: finish every migration a crash cut short."""
        await self._runs.resume(lambda r: r.kind is PaymentKind.MIGRATE and r.data.get("direction") == "out")

    async def stop(self) -> None:
        await self._runs.stop()


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


def private_link(url: str) -> bool:
    """Whether notes may travel to `url`: https, or plain http to this machine only."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "https":
        return True
    host = (parsed.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return parsed.scheme == "http" and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
