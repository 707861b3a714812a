"""What the dashboard shows: frozen view types, filled by `services.dashboard`, drawn by `http.dashboard`.

Amounts are integer msat, times unix seconds; text fields are raw (the renderer escapes them).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class HealthState(enum.Enum):
    """The gateway's overall state, as the dashboard's banner shows it."""

    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True)
class Health:
    """Is the gateway serving, and if not, why."""

    state: HealthState
    problems: tuple[str, ...]
    version: str
    node_id: str
    alias: str
    network: str
    block_height: int | None
    lightning_version: str
    spendable_msat: int | None
    receivable_msat: int | None
    database: str
    schema_version: int
    federations_connected: int
    federations_total: int
    peers_active: int
    payments_in_flight: int
    restored_from: int | None = None  # when the backup this database was restored from was taken


@dataclass(frozen=True)
class FederationRow:
    federation_id: str
    name: str
    protocol: str
    api_version: str
    scid: str
    ecash_msat: int
    fee_base_msat: int
    fee_ppm: int
    limits: str
    status: str
    registration: str
    error: str


@dataclass(frozen=True)
class PaymentRow:
    payment_id: str
    kind: str
    state: str
    federation_id: str
    amount_msat: int
    fee_msat: int
    created_at: int
    elapsed_ms: int | None
    error: str


@dataclass(frozen=True)
class LedgerEntryRow:
    entry_id: str
    delta_msat: int
    created_at: int


@dataclass(frozen=True)
class PeerRow:
    node_id: str
    url: str
    status: str
    balance_msat: int
    credit_limit_msat: int
    credit_used_msat: int
    peer_credit_limit_msat: int
    peer_credit_used_msat: int
    ledger_status: str
    last_seen: int | None
    entries: tuple[LedgerEntryRow, ...]


@dataclass(frozen=True)
class DayPoint:
    """One UTC day of succeeded payments: volume and latency percentiles."""

    day: str  # YYYY-MM-DD
    count: int
    volume_msat: int
    latency_ms_p50: int | None
    latency_ms_p90: int | None


@dataclass(frozen=True)
class DashboardView:
    """Everything on the page, taken at `generated_at`."""

    generated_at: int
    health: Health
    federations: tuple[FederationRow, ...]
    payments: tuple[PaymentRow, ...]
    peers: tuple[PeerRow, ...]
    days: tuple[DayPoint, ...]
