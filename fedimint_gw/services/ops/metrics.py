"""Prometheus metrics (prometheus-client), every name prefixed `fedimint_gw_`.

Each gateway has its own `CollectorRegistry` (nothing registers in the library's global one).
A scrape reads a fresh `OpsSnapshot` and renders it; counters are sums over the payments log,
so they only grow, survive restarts, and equal what `fedimint-payments` shows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from fedimint_gw.services.ops.snapshot import OpsSnapshot, SnapshotReader

TERMINAL = ("succeeded", "failed", "refunded")
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class SnapshotCollector(Collector):
    """Turns the snapshot it is given into metric families (prometheus-client calls `collect`)."""

    def __init__(self) -> None:
        self.snapshot: OpsSnapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if snap is None:
            return
        yield from _payments(snap)
        yield _latency(snap)
        yield from _federations(snap)
        yield from _peers(snap)
        held = GaugeMetricFamily("fedimint_gw_htlcs_held", "Incoming HTLCs the gateway holds now")
        held.add_metric([], snap.htlcs_held)
        yield held


def _payments(snap: OpsSnapshot) -> Iterator[Metric]:
    labels = ["kind", "state", "federation"]
    done = CounterMetricFamily("fedimint_gw_payments", "Payments that reached a final state", labels=labels)
    flight = GaugeMetricFamily("fedimint_gw_payments_in_flight", "Payments not finished yet", labels=labels)
    amount = CounterMetricFamily(
        "fedimint_gw_payment_amount_msat",
        "Amount of succeeded payments (msat)",
        labels=["kind", "federation"],
    )
    fees = CounterMetricFamily(
        "fedimint_gw_payment_fees_msat",
        "Fees of succeeded payments (msat; earned, except kind=migrate: paid by the gateway)",
        labels=["kind", "federation"],
    )
    losses = CounterMetricFamily(
        "fedimint_gw_losses", "Payments that reported a loss", labels=["kind", "federation"]
    )
    lost = CounterMetricFamily(
        "fedimint_gw_lost_msat", "Money lost, as reported by the flows (msat)", labels=["kind", "federation"]
    )
    took = CounterMetricFamily(
        "fedimint_gw_federation_fees_msat",
        "What the federations took for the payments' own transactions (msat; any state)",
        labels=["kind", "federation"],
    )
    shortfalls = CounterMetricFamily(
        "fedimint_gw_fee_shortfalls",
        "Succeeded payments whose federation fees were more than the fee charged (money lost)",
        labels=["kind", "federation"],
    )
    shortfall = CounterMetricFamily(
        "fedimint_gw_fee_shortfall_msat",
        "By how much the federation fees exceeded the fee charged, summed (msat)",
        labels=["kind", "federation"],
    )
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0, 0])
    for g in snap.payments:
        fam = done if g.state in TERMINAL else flight
        fam.add_metric([g.kind, g.state, g.federation_id], g.count)
        s = sums[(g.kind, g.federation_id)]
        if g.state == "succeeded":
            s[0] += g.amount_msat
            s[1] += g.fee_msat
        s[2] += g.losses
        s[3] += g.lost_msat
        s[4] += g.federation_fee_msat
        s[5] += g.shortfalls
        s[6] += g.shortfall_msat
    for (kind, fed), (amt, fee, n_lost, msat_lost, fed_fee, n_short, msat_short) in sorted(sums.items()):
        amount.add_metric([kind, fed], amt)
        fees.add_metric([kind, fed], fee)
        losses.add_metric([kind, fed], n_lost)
        lost.add_metric([kind, fed], msat_lost)
        took.add_metric([kind, fed], fed_fee)
        shortfalls.add_metric([kind, fed], n_short)
        shortfall.add_metric([kind, fed], msat_short)
    yield from (done, flight, amount, fees, losses, lost, took, shortfalls, shortfall)


def _latency(snap: OpsSnapshot) -> Metric:
    hist = HistogramMetricFamily(
        "fedimint_gw_payment_duration_seconds",
        "Time from start to final state of finished payments",
        labels=["kind"],
    )
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, ms in snap.latencies_ms:
        by_kind[kind].append(ms / 1000.0)
    for kind, values in sorted(by_kind.items()):
        buckets = [(str(b), sum(1 for v in values if v <= b)) for b in LATENCY_BUCKETS]
        buckets.append(("+Inf", len(values)))
        hist.add_metric([kind], buckets, sum(values))
    return hist


def _federations(snap: OpsSnapshot) -> Iterator[Metric]:
    def gauge(name: str, doc: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"fedimint_gw_{name}", doc, labels=["federation"])

    ecash = GaugeMetricFamily(
        "fedimint_gw_ecash_msat", "The gateway's ecash per federation (msat)", labels=["federation", "name"]
    )
    up = gauge("federation_up", "1 when a threshold of the federation's guardians answers")
    connected = gauge("federation_connected", "1 when the gateway's link to the federation is open")
    guardians = gauge("federation_guardians", "Guardians of the federation")
    reachable = gauge("federation_guardians_reachable", "Guardians that answered the last probe")
    threshold = gauge("federation_guardian_threshold", "Guardians needed to decide")
    cap = gauge("federation_max_ecash_msat", "The operator's ecash cap (absent: none)")
    low = gauge("federation_low_water_msat", "The operator's low-water alert level (absent: none)")
    below = gauge("federation_below_low_water", "1 when the ecash is below the low-water level")
    draining = gauge("federation_draining", "1 when the federation is in drain mode")
    for f in snap.federations:
        fid = [f.federation_id]
        ecash.add_metric([f.federation_id, f.name], f.ecash_msat)
        up.add_metric(fid, 1 if f.probe.reachable else 0)
        connected.add_metric(fid, 1 if f.status == "connected" else 0)
        guardians.add_metric(fid, f.probe.guardians)
        reachable.add_metric(fid, f.probe.answering)
        threshold.add_metric(fid, f.probe.threshold)
        if f.max_ecash_msat is not None:
            cap.add_metric(fid, f.max_ecash_msat)
        if f.low_water_msat is not None:
            low.add_metric(fid, f.low_water_msat)
        below.add_metric(fid, 1 if f.low_water_msat is not None and f.ecash_msat < f.low_water_msat else 0)
        draining.add_metric(fid, 1 if f.draining else 0)
    yield from (ecash, up, connected, guardians, reachable, threshold, cap, low, below, draining)


def _peers(snap: OpsSnapshot) -> Iterator[Metric]:
    balance = GaugeMetricFamily(
        "fedimint_gw_peer_balance_msat", "Peer ledger balance (msat; > 0: the peer owes us)", labels=["peer"]
    )
    limit = GaugeMetricFamily(
        "fedimint_gw_peer_credit_limit_msat",
        "Credit granted to the peer (direction=granted) or by it (direction=received)",
        labels=["peer", "direction"],
    )
    used = GaugeMetricFamily(
        "fedimint_gw_peer_credit_used_msat", "Credit in use, same directions", labels=["peer", "direction"]
    )
    for p in snap.peers:
        balance.add_metric([p.node_id], p.balance_msat)
        limit.add_metric([p.node_id, "granted"], p.credit_limit_msat)
        limit.add_metric([p.node_id, "received"], p.peer_credit_limit_msat)
        used.add_metric([p.node_id, "granted"], p.credit_used_msat)
        used.add_metric([p.node_id, "received"], p.peer_credit_used_msat)
    yield from (balance, limit, used)


class Metrics:
    """The gateway's registry and its one collector."""

    def __init__(self, reader: SnapshotReader) -> None:
        self._reader = reader
        self._collector = SnapshotCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self._collector)

    async def render(self) -> tuple[bytes, str]:
        """(exposition text, content type) of a fresh snapshot."""
        self._collector.snapshot = await self._reader.read()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
