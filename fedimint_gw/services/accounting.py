"""`fedimint-export`: every payment of a period, as rows an accountant can load (CSV or JSON).

Built on the payments log, with the same period rule as `fedimint-summary` (payments created
in [start, end), v2 invoices never paid left out) and the same sums: per kind, the volume is
the amount of the payments that succeeded, fees earned are the fees of those that succeeded
(the gateway's own migrations pay theirs: `fees_paid_msat`). docs/operator-guide.md says how
the rows line up with CLN's bookkeeper.
"""

from __future__ import annotations

import csv
import enum
import io
from typing import Any

from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import InvalidInput
from fedimint_gw.store import payments as repo
from fedimint_gw.store.db import Database

COLUMNS = (
    "payment_id",
    "kind",
    "state",
    "federation_id",
    "target_federation_id",
    "payment_hash",
    "amount_msat",
    "fee_msat",
    "fee_direction",
    "federation_fee_msat",
    "lost_msat",
    "created_at",
    "finished_at",
    "elapsed_ms",
    "peer",
    "direction",
    "error",
)


class ExportFormat(enum.Enum):
    CSV = "csv"
    JSON = "json"


class FeeDirection(enum.Enum):
    """Who a row's fee went to: earned by the gateway, paid by it, or none (not succeeded)."""

    EARNED = "earned"
    PAID = "paid"
    NONE = "none"


def _direction(r: repo.PaymentRecord) -> FeeDirection:
    if r.kind is PaymentKind.MIGRATE and r.data.get("direction") == "out":
        return FeeDirection.PAID if r.state.terminal else FeeDirection.NONE
    return FeeDirection.EARNED if r.state is PaymentState.SUCCEEDED else FeeDirection.NONE


def export_row(r: repo.PaymentRecord) -> dict[str, Any]:
    """One payment as an export row (every column present; None where it does not apply)."""
    peer = r.data.get("peer") if r.kind in (PaymentKind.PEER, PaymentKind.MIGRATE) else None
    return {
        "payment_id": r.payment_id,
        "kind": r.kind.value,
        "state": r.state.value,
        "federation_id": r.federation_id,
        "target_federation_id": r.target_federation_id,
        "payment_hash": r.payment_hash,
        "amount_msat": r.amount_msat,
        "fee_msat": r.fee_msat,
        "fee_direction": _direction(r).value,
        "federation_fee_msat": r.federation_fee_msat or 0,
        "lost_msat": int(r.data.get("lost_msat", 0) or 0),
        "created_at": r.created_at,
        "finished_at": r.updated_at if r.state.terminal else None,
        "elapsed_ms": r.data.get("elapsed_ms"),
        "peer": peer,
        "direction": r.data.get("direction") if peer else None,
        "error": r.error,
    }


def totals(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per kind: rows, succeeded, volume, fees earned and paid, what the federations took (any
    state: a failed payment may have paid a funding) and the margin (earned less that), losses
    (the summary's sums)."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        t = out.setdefault(
            row["kind"],
            {
                "count": 0,
                "succeeded": 0,
                "volume_msat": 0,
                "fees_earned_msat": 0,
                "fees_paid_msat": 0,
                "federation_fees_msat": 0,
                "margin_msat": 0,
                "lost_msat": 0,
            },
        )
        t["count"] += 1
        t["federation_fees_msat"] += row["federation_fee_msat"]
        t["margin_msat"] -= row["federation_fee_msat"]
        t["lost_msat"] += row["lost_msat"]
        if row["state"] == PaymentState.SUCCEEDED.value:
            t["succeeded"] += 1
            t["volume_msat"] += row["amount_msat"]
        if row["fee_direction"] == FeeDirection.EARNED.value:
            t["fees_earned_msat"] += row["fee_msat"]
            t["margin_msat"] += row["fee_msat"]
        elif row["fee_direction"] == FeeDirection.PAID.value:
            t["fees_paid_msat"] += row["fee_msat"]
    return out


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """A CSV cell: empty for None; text that a spreadsheet would run as a formula (error texts
    can quote what a federation or peer said) is prefixed with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV with a header line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buf.getvalue()


class Accounting:
    """The export, read from the payments log."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def export(self, start: object, end: object, fmt: object, now: int) -> dict[str, Any]:
        """Payments created in [start, end) (unix seconds; default all time), oldest first."""
        s = _int(start, "start", 0)
        e = _int(end, "end", now + 1)
        if e <= s:
            raise InvalidInput("end must be after start")
        try:
            form = ExportFormat(str(fmt or "json").strip().lower())
        except ValueError:
            raise InvalidInput("format must be csv or json") from None
        records = sorted(await repo.between(self._db.conn, s, e), key=lambda r: (r.created_at, r.payment_id))
        rows = [export_row(r) for r in records]
        body: dict[str, Any] = {
            "start": s,
            "end": e,
            "format": form.value,
            "count": len(rows),
            "totals": totals(rows),
        }
        if form is ExportFormat.CSV:
            body["csv"] = to_csv(rows)
        else:
            body["payments"] = rows
        return body


def _int(raw: object, name: str, default: int) -> int:
    if raw in (None, ""):
        return default
    if isinstance(raw, bool):
        raise InvalidInput(f"{name} must be an integer (unix seconds)")
    if isinstance(raw, int) and raw >= 0:
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    raise InvalidInput(f"{name} must be unix seconds (a non-negative integer), got {raw!r}")
