"""One migration's chunks, run to the end (see migration.py for what a migration is).

Each chunk of a migration (payment kind MIGRATE, id `migrate:<id>`, data "step"):
    spend:   our A notes for the chunk (operation id derived from the chunk: the same notes again)
    offer:   an `exchange` request may have been sent; only the peer's answer decides what happened
    take:    notes from the peer (B, or A back if it had to refund), checked and stored, then
             reissued into our own; the next chunk starts at `spend`
    reclaim: the peer never took our notes: reissue them back into our own A ecash, and stop
A signed refusal before the peer started, or an exchange it never saw (`exchange_status`
tombstones it), ends the migration with our notes reclaimed. Notes that fail our checks mean
the chunk is lost to the peer: recorded as `lost_msat`, logged at error, and the migration stops.
Every step is written before it runs and is idempotent, so a crash anywhere resumes at start.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentState
from fedimint_gw.errors import (
    FederationRejected,
    InsufficientFunds,
    InvalidInput,
    NotFound,
)
from fedimint_gw.federation.client import EcashNotes
from fedimint_gw.peer.errors import NOT_STARTED, PeerOutcomeUnknown, PeerRefused, PeerUnreachable
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.flow_runs import RETRY_PAUSE, run_steps
from fedimint_gw.services.liquidity.exchange import ExchangeTerms
from fedimint_gw.services.peering.links import PeerService
from fedimint_gw.store import payments as pay_repo

EXCHANGE_TIMEOUT = 60.0
MAX_PAUSE = 30.0  # the longest wait between two questions to the peer
WAIT_WARN = 600  # after this long without an answer, every question is logged at warn


class ChunkRunner:
    """Drives a recorded migration chunk by chunk until it succeeds or stops."""

    def __init__(self, ctx: ServiceContext, peers: PeerService) -> None:
        self._ctx = ctx
        self._peers = peers

    async def run(self, rec: pay_repo.PaymentRecord) -> pay_repo.PaymentRecord:
        """Run `rec` to a terminal state (waits out federations and peers that do not answer)."""
        return await run_steps(rec, self._step, f"migration {rec.payment_id}", self._ctx.log)

    async def _step(self, rec: pay_repo.PaymentRecord, _waits: int) -> pay_repo.PaymentRecord:
        step = rec.data["step"]
        if step == "spend":
            if int(rec.data["moved_msat"]) >= rec.amount_msat:
                self._ctx.log(f"migration {rec.payment_id}: done, {_progress(rec)}", "info")
                return await self._ctx.advance(rec, PaymentState.SUCCEEDED)
            try:
                fee = (await self._spend(rec)).fee.value  # what the federation really took
            except (InsufficientFunds, FederationRejected) as exc:
                return await self._stop(rec, exc.message)
            spent = int(rec.data["out_msat"]) + _chunk(rec) + fee
            rec = await self._ctx.advance(rec, rec.state, data={"step": "offer", "out_msat": spent})
            return await self._offer(rec, first=True)
        if step == "offer":
            return await self._offer(rec, first=False)
        if step == "take":
            return await self._take(rec)
        return await self._reclaim(rec)

    async def _spend(self, rec: pay_repo.PaymentRecord) -> EcashNotes:
        """This chunk's notes of the source federation (the same notes on every call)."""
        client = self._ctx.federations.client(FederationId(str(rec.federation_id)))
        return await client.spend_ecash(Msat(_chunk(rec)), f"migrate-{_exchange_id(rec)}")

    async def _notes(self, rec: pay_repo.PaymentRecord) -> str:
        return (await self._spend(rec)).notes

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
        # What the notes are worth to us once reissued, against what the quote planned.
        worth = summary.amount.value - summary.reissue_fee.value
        planned = expected - _costs(rec).reissue_msat
        if into == "target" and summary.amount.value < expected:
            why = f"the peer gave {summary.amount.value} msat of notes for a chunk quoted at {expected} msat"
        elif into == "target" and worth < planned:
            why = (
                f"the peer's notes cost {summary.reissue_fee.value} msat to reissue: worth {worth} msat "
                f"to us, {planned} msat planned for the chunk"
            )
        elif into == "source" and not why:
            why = "the peer answered with notes of the source federation"
        data = {"step": "take", "notes_in": notes, "into": into, "reason": why, "waiting": ""}
        return await self._ctx.advance(
            rec, rec.state, data={**data, "notes_msat": summary.amount.value, "notes_net_msat": worth}
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
            net = rec.data.get("notes_net_msat")  # what the notes are worth to us, reissued
            if net is not None:
                short = max(0, _expected(rec) - _costs(rec).reissue_msat - int(net))
            else:  # older records: their amount (or what our reissue gave) against the quote
                worth = rec.data.get("notes_msat")
                worth = int(worth) if worth is not None else got + _costs(rec).reissue_msat
                short = max(0, _expected(rec) - worth)
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


@dataclass(frozen=True)
class ChunkCosts:
    """What one chunk of a given size costs: the peer's terms for it, and what the federations
    take from us for spending the chunk in the source and reissuing the peer's notes in the
    target (both from the federations' public config, `FederationClient.ecash_fees`)."""

    terms: ExchangeTerms
    spend_msat: int
    reissue_msat: int

    def total(self, chunk: int) -> int:
        """Everything the chunk costs: the peer's price plus our own spend and reissue."""
        return self.terms.fee(chunk) + self.spend_msat + self.reissue_msat

    def to_json(self) -> dict[str, Any]:
        return {
            "terms": self.terms.to_json(),
            "spend_msat": self.spend_msat,
            "reissue_msat": self.reissue_msat,
        }

    @staticmethod
    def from_json(body: dict[str, Any]) -> ChunkCosts:
        terms = ExchangeTerms.from_json(body["terms"])
        return ChunkCosts(terms, int(body["spend_msat"]), int(body["reissue_msat"]))


def _costs(rec: pay_repo.PaymentRecord) -> ChunkCosts:
    """The current chunk's costs, as planned for its size (records written before per-size costs:
    the flat transaction fees of the quote stood for our own spend and reissue too)."""
    planned = rec.data.get("chunk_costs", {}).get(str(_chunk(rec)))
    if planned is not None:
        return ChunkCosts.from_json(planned)
    terms = ExchangeTerms.from_json(rec.data["terms"])
    return ChunkCosts(terms, terms.tx_fee_source_msat, terms.tx_fee_target_msat)


def _terms(rec: pay_repo.PaymentRecord) -> ExchangeTerms:
    return _costs(rec).terms


def _chunk(rec: pay_repo.PaymentRecord) -> int:
    return min(int(rec.data["chunk_msat"]), rec.amount_msat - int(rec.data["moved_msat"]))


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
