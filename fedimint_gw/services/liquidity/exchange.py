"""The peer's half of a migration: take a gateway's ecash in A, hand back ecash in B.

A peer gateway that serves both federations asks for a quote (`exchange_quote`), then sends
its notes of A in an `exchange` request. This gateway (payment kind MIGRATE, id
`xin:<peer>:<exchange id>`, docs/peer-protocol.md §10):
    HTLC_HELD (accepted, notes stored) --reissue A notes--> FUNDED (value received)
        --spend B notes of (received - fee)--> SUCCEEDED (the notes are the answer)
    A refused the notes ------------------------------------> FAILED (nothing of ours moved)
    not enough B ecash after all --spend A notes back------> REFUNDED (the notes are the answer)
We only give after we have received, and only for notes that are worth what the request says,
belong to A and were never received by us before (their fingerprint is recorded under a lock),
so this side carries no risk; the sender's risk (one chunk) is bounded by the credit it grants.
Every step is written before it runs and is idempotent (the notes' operation ids are derived
from the exchange id), so a crash resumes it and a repeated request gets the same answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any, TypeGuard

from fedimint_gw.domain.amount import FeeSchedule, Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import (
    FederationRejected,
    InsufficientFunds,
    InvalidInput,
    NotReady,
    PaymentRefused,
)
from fedimint_gw.peer import wire
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.flow_runs import FlowRuns, run_steps
from fedimint_gw.services.payments.swap import SwapService
from fedimint_gw.store import payments as pay_repo
from fedimint_gw.store import peers as repo

INBOUND_DEADLINE = 30.0  # how long we work on an exchange before answering "pending"
BUSY_TRIES = 15  # tries while our target ecash is reserved by other flows, before refunding
CANCELLED = "cancelled"


@dataclass(frozen=True)
class ExchangeTerms:
    """What an exchange of one amount costs: our swap fee for the pair plus what the federations
    take from us: reissuing the notes in the source, spending the given notes in the target.
    The federations' part depends on the amount where they charge per note (Fedimint's mint
    fees), so terms are for one amount (`ExchangeService.terms`)."""

    fees: FeeSchedule
    tx_fee_source_msat: int  # the source federation's fee on our reissue of the notes
    tx_fee_target_msat: int  # the target federation's fee on our spend of the given notes

    def fee(self, amount: int) -> int:
        return self.fees.fee(Msat(amount)).value + self.tx_fee_source_msat + self.tx_fee_target_msat

    def to_json(self) -> dict[str, int]:
        return {
            "base_msat": self.fees.base_msat,
            "ppm": self.fees.ppm,
            "tx_fee_source_msat": self.tx_fee_source_msat,
            "tx_fee_target_msat": self.tx_fee_target_msat,
        }

    @staticmethod
    def from_json(body: dict[str, Any]) -> ExchangeTerms:
        """Parse a quote; raises ValueError on anything malformed."""
        values = [body.get(k) for k in ("base_msat", "ppm", "tx_fee_source_msat", "tx_fee_target_msat")]
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
            raise ValueError("a quote needs non-negative integer base_msat, ppm and transaction fees")
        base, ppm, tx_source, tx_target = (int(v) for v in values)  # type: ignore[arg-type]
        return ExchangeTerms(FeeSchedule(base, ppm), tx_source, tx_target)


class ExchangeService:
    """Answers `exchange_quote`, `exchange` and `exchange_status` from peers."""

    def __init__(self, ctx: ServiceContext, swaps: SwapService) -> None:
        self._ctx = ctx
        self._swaps = swaps
        self._accepting = asyncio.Lock()  # one fingerprint check-and-record at a time
        self._runs = FlowRuns(ctx.db, self._drive)

    async def terms(self, source: FederationId, target: FederationId, amount: int) -> ExchangeTerms:
        """Our price for moving `amount` from `source` to `target`: the swap fee of the pair plus
        the federations' fees on our side (from their public config: the sender computes the same)."""
        if source == target:
            raise InvalidInput("an exchange needs two different federations")
        return await exchange_terms(
            self._ctx, await self._swaps.fee_schedule(source, target), source, target, amount
        )

    async def on_quote(self, peer: repo.PeerRecord, body: dict[str, Any]) -> dict[str, Any]:
        """Our terms for the pair (for `amount_msat`, if given), and how much target ecash we
        could hand out now."""
        source, target = _pair(body)
        amount = body.get("amount_msat", 0)
        if not _positive(amount, zero=True):
            raise InvalidInput("amount_msat must be a non-negative integer")
        have = (await self._ctx.federations.client(target).balance()).value
        # Priced for at most what we hold: a larger exchange could not be served anyway, and the
        # federations' per-note fees are not worth computing for an arbitrary number.
        terms = await self.terms(source, target, min(amount, have))
        return {**terms.to_json(), "available_msat": max(0, have - terms.tx_fee_target_msat)}

    async def on_exchange(self, peer: repo.PeerRecord, body: dict[str, Any]) -> dict[str, Any]:
        """Accept (or refuse, having done nothing) an exchange, run it, and answer its outcome."""
        exchange_id, payment_id = _ids(peer, body)
        async with self._runs.lock(payment_id):
            rec = await pay_repo.get(self._ctx.db.conn, payment_id)
            if rec is None:
                rec = await self._accept(peer, exchange_id, payment_id, body)
        return _answer(await self._runs.settle(rec, INBOUND_DEADLINE))

    async def on_status(self, peer: repo.PeerRecord, body: dict[str, Any]) -> dict[str, Any]:
        """An exchange's outcome; an id never seen is tombstoned when the sender asks for it."""
        exchange_id, payment_id = _ids(peer, body)
        data = {"direction": "in", "peer": peer.node_id, "exchange_id": exchange_id}
        now = self._ctx.clock.now()
        rec = await self._runs.status(payment_id, body.get("cancel_unknown"), PaymentKind.MIGRATE, now, data)
        if rec is None:
            return {"exchange_id": exchange_id, "state": "unknown"}
        return _answer(await self._runs.settle(rec, 0.0))  # restarts a run that died

    async def _accept(
        self, peer: repo.PeerRecord, exchange_id: str, payment_id: str, body: dict[str, Any]
    ) -> pay_repo.PaymentRecord:
        source, target = _pair(body)
        amount, offered, notes = body.get("amount_msat"), body.get("fee_msat"), body.get("notes")
        if (
            not _positive(amount)
            or not _positive(offered, zero=True)
            or not isinstance(notes, str)
            or not notes
        ):
            raise InvalidInput("an exchange needs notes, a positive amount_msat and fee_msat")
        # The notes first (offline): the amount priced below is then one somebody really holds.
        summary = await self._ctx.federations.client(source).inspect_ecash(notes)
        if summary.federation_id != source.hex:
            raise InvalidInput(
                f"the notes belong to federation {summary.federation_id[:8]}, not {source.short()}"
            )
        if summary.amount.value != amount:
            raise InvalidInput(f"the notes hold {summary.amount.value} msat, not amount_msat {amount}")
        terms = await self.terms(source, target, amount)
        if summary.reissue_fee.value > terms.tx_fee_source_msat:
            # Worth the amount, but split so that reissuing them costs more than priced (many
            # small notes pay a mint fee each): the difference would be ours to lose.
            raise InvalidInput(
                f"reissuing these notes costs {summary.reissue_fee.value} msat, more than the "
                f"{terms.tx_fee_source_msat} msat priced for notes worth {amount} msat: send notes "
                "as a spend of that amount makes them"
            )
        fee = terms.fee(amount)
        if offered < fee:
            raise PaymentRefused(f"this exchange costs {fee} msat; {offered} msat was offered")
        if amount - fee <= terms.tx_fee_target_msat or amount <= 2 * terms.tx_fee_source_msat:
            raise InvalidInput(f"{amount} msat is too small to exchange: the fees are {fee} msat")
        have = (await self._ctx.federations.client(target).balance()).value
        if have < amount - fee + terms.tx_fee_target_msat:
            raise InsufficientFunds(
                f"this gateway holds {have} msat of ecash in {target.short()}, "
                f"{amount - fee + terms.tx_fee_target_msat} msat needed for this exchange"
            )
        rec = migrate_record(
            payment_id,
            PaymentState.HTLC_HELD,
            (source, target),
            amount,
            self._ctx.clock.now(),
            fee_msat=terms.fees.fee(Msat(amount)).value,  # what we earn; the rest pays the federations
            data={
                "direction": "in",
                "peer": peer.node_id,
                "exchange_id": exchange_id,
                "notes_in": notes,
                "fingerprint": summary.fingerprint,
                "fee_quoted_msat": fee,
                "tx_fee_source_msat": terms.tx_fee_source_msat,
                "started": time.time(),
            },
        )
        async with self._accepting:
            if summary.received or await pay_repo.has_fingerprint(self._ctx.db.conn, summary.fingerprint):
                raise InvalidInput("these notes were already received by this gateway")
            async with self._ctx.db.transaction() as conn:
                await pay_repo.save(conn, rec)
        self._ctx.log(
            f"exchange {exchange_id} from {peer.node_id[:16]}: {amount} msat {source.short()} -> "
            f"{target.short()} accepted",
            "info",
        )
        return rec

    async def _drive(self, rec: pay_repo.PaymentRecord) -> pay_repo.PaymentRecord:
        """Receive first, then give (or give back). Waits out federations that do not answer."""
        return await run_steps(rec, self._step, f"exchange {rec.data['exchange_id']}", self._ctx.log)

    async def _step(self, rec: pay_repo.PaymentRecord, waits: int) -> pay_repo.PaymentRecord:
        source = FederationId(str(rec.federation_id))
        if rec.state is PaymentState.FUNDED:
            target = FederationId(str(rec.target_federation_id))
            op = "xin-" + hashlib.sha256(rec.payment_id.encode()).hexdigest()[:32]
            return await self._give(rec, source, target, op, waits)
        try:
            got = await self._ctx.federations.client(source).receive_ecash(str(rec.data["notes_in"]))
        except (InvalidInput, FederationRejected) as exc:
            return await self._ctx.advance(
                rec, PaymentState.FAILED, error=f"the notes were refused: {exc.message}"
            )
        return await self._ctx.advance(rec, PaymentState.FUNDED, data={"received_msat": got.value})

    async def _give(
        self, rec: pay_repo.PaymentRecord, source: FederationId, target: FederationId, op: str, waits: int
    ) -> pay_repo.PaymentRecord:
        """Hand out target notes worth what we received minus the fee; or give the source back."""
        received = int(rec.data["received_msat"])
        source_fee = int(rec.data["tx_fee_source_msat"])  # as at accept: the give never changes
        # Our price, fixed at accept: what the federations really took is our cost, not the sender's
        # (the same as received + source_fee - quoted fee whenever the reissue cost what we quoted).
        give = rec.amount_msat - int(rec.data["fee_quoted_msat"])
        refund = "refund" in rec.data
        if not refund and give > 0:
            try:
                notes = await self._ctx.federations.client(target).spend_ecash(Msat(give), op)
                return await self._ctx.advance(
                    rec,
                    PaymentState.SUCCEEDED,
                    fee_msat=self._earned(rec, received, give, notes.fee.value),
                    data={"notes_out": notes.notes, "given_msat": give, "spend_fee_msat": notes.fee.value},
                )
            except (InsufficientFunds, FederationRejected) as exc:
                reason = exc.message
            except NotReady as exc:
                if waits < BUSY_TRIES:
                    raise
                reason = exc.message
            rec = await self._ctx.advance(rec, rec.state, data={"refund": reason})
        back = received - source_fee
        reason = str(rec.data.get("refund", "the exchange would give nothing"))
        if back <= 0:  # cannot happen: _accept refuses amounts the fees would eat
            return await self._ctx.advance(rec, PaymentState.FAILED, error=reason)
        try:
            notes = await self._ctx.federations.client(source).spend_ecash(Msat(back), op + "-back")
        except FederationRejected as exc:
            why = f"{reason}; giving back in {source.short()} was refused too ({exc.message})"
            self._ctx.log(f"exchange {rec.data['exchange_id']}: {why}; we keep {received} msat", "error")
            return await self._ctx.advance(rec, PaymentState.FAILED, error=why, data={"kept_msat": received})
        self._ctx.log(
            f"exchange {rec.data['exchange_id']}: refunded in the source federation ({reason})", "warn"
        )
        return await self._ctx.advance(
            rec,
            PaymentState.REFUNDED,
            error=reason,
            fee_msat=0,
            data={"notes_out": notes.notes, "given_msat": back},
        )

    def _earned(self, rec: pay_repo.PaymentRecord, received: int, give: int, spend_fee: int) -> int:
        """What the exchange left us: the notes' value after our reissue, less what we gave and
        what our spend cost. The pair fee when the federations took what the quote said; where they
        took more (a spend's change notes pay mint fees too), the difference is ours to bear."""
        earned = received - give - spend_fee
        if earned < rec.fee_msat:
            self._ctx.log(
                f"exchange {rec.data['exchange_id']}: the federations took {rec.fee_msat - earned} msat "
                f"more than quoted; earned {earned} msat",
                "info",
            )
        return max(0, earned)

    async def resume(self) -> None:
        """At start: finish every exchange a crash cut short."""
        await self._runs.resume(lambda r: r.kind is PaymentKind.MIGRATE and r.data.get("direction") == "in")

    async def stop(self) -> None:
        await self._runs.stop()


def _answer(rec: pay_repo.PaymentRecord) -> dict[str, Any]:
    exchange_id = rec.data.get("exchange_id")
    if rec.state in (PaymentState.SUCCEEDED, PaymentState.REFUNDED):
        return {
            "exchange_id": exchange_id,
            "state": rec.state.value,
            "notes": rec.data["notes_out"],
            "amount_msat": rec.data["given_msat"],
            **({"error": rec.error} if rec.error else {}),
        }
    if rec.state is PaymentState.FAILED:
        state = CANCELLED if rec.data.get("outcome") == CANCELLED else "failed"
        return {"exchange_id": exchange_id, "state": state, "error": rec.error or ""}
    return {"exchange_id": exchange_id, "state": "pending"}


def _pair(body: dict[str, Any]) -> tuple[FederationId, FederationId]:
    try:
        source = FederationId.parse(body.get("from_federation"))
        target = FederationId.parse(body.get("to_federation"))
    except ValueError as exc:
        raise InvalidInput(f"from_federation and to_federation must be federation ids: {exc}") from None
    if source == target:
        raise InvalidInput("an exchange needs two different federations")
    return source, target


def _ids(peer: repo.PeerRecord, body: dict[str, Any]) -> tuple[str, str]:
    """The exchange id a message names (checked), and the id of its payment record here."""
    exchange_id = body.get("exchange_id")
    if not wire.is_protocol_id(exchange_id) or not isinstance(exchange_id, str):
        raise InvalidInput("exchange_id must be 1-64 characters of [A-Za-z0-9_-]")
    return exchange_id, f"xin:{peer.node_id}:{exchange_id}"


async def exchange_terms(
    ctx: ServiceContext, fees: FeeSchedule, source: FederationId, target: FederationId, amount: int
) -> ExchangeTerms:
    """The terms of exchanging `amount` at the pair fee `fees`: the exchanging gateway's reissue
    in the source and spend in the target, priced from the federations' public config."""
    reissue = (await ctx.federations.client(source).ecash_fees(Msat(amount))).reissue
    spend = (await ctx.federations.client(target).ecash_fees(Msat(amount))).spend
    return ExchangeTerms(fees, reissue.value, spend.value)


def migrate_record(
    payment_id: str,
    state: PaymentState,
    pair: tuple[FederationId, FederationId],
    amount: int,
    now: int,
    data: dict[str, Any],
    fee_msat: int = 0,
) -> pay_repo.PaymentRecord:
    """A new MIGRATE record: a migration of ours (direction out) or an exchange for a peer (in)."""
    return pay_repo.PaymentRecord(
        payment_id=payment_id,
        kind=PaymentKind.MIGRATE,
        state=state,
        payment_hash="",
        amount_msat=amount,
        created_at=now,
        updated_at=now,
        federation_id=pair[0].hex,
        target_federation_id=pair[1].hex,
        fee_msat=fee_msat,
        data=data,
    )


def _positive(value: object, zero: bool = False) -> TypeGuard[int]:
    """An msat figure from a peer: an int (not a bool), positive (or zero when allowed)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return value >= 0 if zero else value > 0
