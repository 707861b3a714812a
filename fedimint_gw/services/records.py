"""`fedimint-payments` and `fedimint-summary`: what happened, for the operator."""

from __future__ import annotations

from typing import Any

from fedimint_gw.domain import parse
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import InvalidInput
from fedimint_gw.store import payments as repo
from fedimint_gw.store.db import Database

MAX_LIMIT = 1000


def _record_json(r: repo.PaymentRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payment_id": r.payment_id,
        "kind": r.kind.value,
        "state": r.state.value,
        "federation_id": r.federation_id,
        "payment_hash": r.payment_hash,
        "amount_msat": r.amount_msat,
        "fee_msat": r.fee_msat,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }
    if r.federation_fee_msat is not None:  # what the federations took for its transactions
        body["federation_fee_msat"] = r.federation_fee_msat
        earned = r.fee_msat if r.state is PaymentState.SUCCEEDED else 0  # a failed one earned nothing
        body["margin_msat"] = earned - r.federation_fee_msat
    if r.target_federation_id:
        body["target_federation_id"] = r.target_federation_id
    if "elapsed_ms" in r.data:
        body["elapsed_ms"] = r.data["elapsed_ms"]
    if r.error:
        body["error"] = r.error
    if r.data.get("lost_msat"):  # any kind: a receive cut short in the window reports it too
        body["lost_msat"] = r.data["lost_msat"]
    if r.data.get("api"):
        body["api"] = r.data["api"]
    if r.kind in (PaymentKind.PEER, PaymentKind.MIGRATE) and r.data.get("peer"):
        body["peer"] = r.data["peer"]
        body["direction"] = r.data.get("direction")
    if r.kind is PaymentKind.MIGRATE and r.data.get("direction") == "out":
        body["moved_msat"] = r.data.get("moved_msat", 0)
        body["received_msat"] = r.data.get("received_msat", 0)
        body["chunks"] = r.data.get("chunks")
        body["chunks_done"] = r.data.get("chunk", 0)
        if not r.state.terminal and r.data.get("waiting"):
            body["waiting"] = r.data["waiting"]
    return body


def _percentile(values: list[int], q: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[idx]


class Records:
    """Read-only views of the payment journal."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def payments(
        self, federation_id: object, state: object, limit: object, before: object
    ) -> dict[str, Any]:
        """A page of payments, newest first."""
        fid = None
        if federation_id not in (None, ""):
            try:
                fid = FederationId.parse(federation_id).hex
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
        st = None
        if state not in (None, ""):
            try:
                st = PaymentState(str(state))
            except ValueError:
                raise InvalidInput(
                    f"state must be one of {', '.join(s.value for s in PaymentState)}"
                ) from None
        n = _int(limit, "limit", 50)
        if not 1 <= n <= MAX_LIMIT:
            raise InvalidInput(f"limit must be from 1 to {MAX_LIMIT}")
        b = None if before in (None, "") else _int(before, "before", 0)
        rows = await repo.page(self._db.conn, fid, st, n, b)
        out: dict[str, Any] = {"payments": [_record_json(r) for _, r in rows]}
        if len(rows) == n:
            out["next_before"] = rows[-1][0]
        return out

    async def summary(self, start: object, end: object, now: int) -> dict[str, Any]:
        """Counts, success rate, fees and latency per kind over [start, end)."""
        s = _int(start, "start", 0)
        e = _int(end, "end", now + 1)
        if e <= s:
            raise InvalidInput("end must be after start")
        rows = await repo.between(self._db.conn, s, e)
        kinds: dict[str, Any] = {}
        for kind in PaymentKind:
            mine = [r for r in rows if r.kind is kind]
            if not mine:
                continue
            ok = [r for r in mine if r.state is PaymentState.SUCCEEDED]
            failed = [r for r in mine if r.state in (PaymentState.FAILED, PaymentState.REFUNDED)]
            latencies = [int(r.data["elapsed_ms"]) for r in ok if "elapsed_ms" in r.data]
            finished = len(ok) + len(failed)
            earned = sum(r.fee_msat for r in ok if not _paid_by_us(r))
            took = sum(r.federation_fee_msat or 0 for r in mine)
            kinds[kind.value] = {
                "count": len(mine),
                "succeeded": len(ok),
                "failed": len(failed),
                "in_flight": len(mine) - finished,
                "success_rate": round(len(ok) / finished, 4) if finished else None,
                "volume_msat": sum(r.amount_msat for r in ok),
                "fees_earned_msat": earned,
                "federation_fees_msat": took,
                "margin_msat": earned - took,
                "latency_ms_p50": _percentile(latencies, 0.5),
                "latency_ms_p90": _percentile(latencies, 0.9),
            }
            if kind is PaymentKind.MIGRATE:
                kinds[kind.value]["fees_paid_msat"] = sum(
                    r.fee_msat for r in mine if _paid_by_us(r) and r.state.terminal
                )
        return {"start": s, "end": e, "kinds": kinds}


def _paid_by_us(r: repo.PaymentRecord) -> bool:
    """Our own migrations pay their fees; exchanges for peers earn theirs."""
    return r.kind is PaymentKind.MIGRATE and r.data.get("direction") == "out"


def _int(raw: object, name: str, default: int) -> int:
    return default if parse.absent(raw) else parse.integer(raw, name)
