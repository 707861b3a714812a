"""Pure in-memory measurements: routing an HTLC and the hook's cost for unrelated HTLCs.

These need no federation, no node and no event loop. Each sample is the mean time of one
batch of calls (a single call is below the clock's useful resolution), so `samples`
batches of `batch` calls give `samples` figures in microseconds per call.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.stats import Row, Summary, ratio
from fedimint_gw.domain.htlc import HtlcEvent
from fedimint_gw.domain.ids import FederationId, ShortChannelId
from fedimint_gw.services.htlc_router import HtlcOwner, HtlcRouter
from tests.support.fake_node import final_payload, forward_payload

HEIGHT = 200
HASHES_PER_FEDERATION = 100  # registered v2 receives waiting for their HTLC, per federation
FEDERATION_COUNTS = (1, 10, 50)


@dataclass(frozen=True)
class MicroCounts:
    """How much to measure: `samples` batches of `batch` calls each."""

    samples: int = 40
    batch: int = 2000


def _fid(i: int) -> FederationId:
    return FederationId(hashlib.sha256(b"bench-federation-%d" % i).hexdigest())


def _hash(i: int, j: int) -> str:
    return hashlib.sha256(b"bench-hash-%d-%d" % (i, j)).hexdigest()


def _scid(i: int) -> ShortChannelId:
    return ShortChannelId.parse(f"{900_000 + i}x{i % 4000}x1")


def populated_router(federations: int) -> HtlcRouter:
    """A router in the state a gateway with `federations` federations is in: one fake scid
    each (v1 receives) and HASHES_PER_FEDERATION registered payment hashes each (v2)."""
    router = HtlcRouter()
    router.set_scids((_scid(i), _fid(i)) for i in range(federations))
    for i in range(federations):
        for j in range(HASHES_PER_FEDERATION):
            router.add_hash(_hash(i, j), _fid(i))
    return router


def _events(federations: int) -> dict[str, HtlcEvent]:
    """One HTLC per kind: unrelated forward, unrelated final hop, owned scid, owned hash."""
    last = federations - 1
    return {
        "unrelated forward": HtlcEvent.from_hook(
            *forward_payload("700x1x0", "ab" * 32, 10_000, 10_100, HEIGHT + 80, HEIGHT)
        ),
        "unrelated final": HtlcEvent.from_hook(
            *final_payload("cd" * 32, "ee" * 32, 10_000, 10_000, HEIGHT + 80, HEIGHT)
        ),
        "owned scid (v1)": HtlcEvent.from_hook(
            *forward_payload(str(_scid(last)), "ef" * 32, 10_000, 12_000, HEIGHT + 80, HEIGHT)
        ),
        "owned hash (v2)": HtlcEvent.from_hook(
            *final_payload(
                _hash(last, HASHES_PER_FEDERATION - 1), "ee" * 32, 10_000, 10_000, HEIGHT + 80, HEIGHT
            )
        ),
    }


def time_per_call_us(func: Callable[[], object], counts: MicroCounts) -> list[float]:
    """`counts.samples` figures, each the mean microseconds per call over one batch."""
    for _ in range(min(counts.batch, 200)):  # warm up caches and the specialising interpreter
        func()
    out: list[float] = []
    loop = range(counts.batch)
    for _ in range(counts.samples):
        start = time.perf_counter_ns()
        for _ in loop:
            func()
        out.append((time.perf_counter_ns() - start) / counts.batch / 1000.0)
    return out


def routing_rows(counts: MicroCounts) -> list[Row]:
    """HtlcRouter.classify with 1, 10 and 50 federations, per HTLC kind; ratio to 1 federation."""
    rows: list[Row] = []
    for kind in ("unrelated forward", "unrelated final", "owned scid (v1)", "owned hash (v2)"):
        base: float | None = None
        for n in FEDERATION_COUNTS:
            router = populated_router(n)
            event = _events(n)[kind]
            decision = router.classify(event)
            expected_unrelated = kind.startswith("unrelated")
            if (decision.owner is HtlcOwner.UNRELATED) != expected_unrelated:
                raise RuntimeError(f"router misclassified {kind!r} with {n} federations: {decision}")
            summary = Summary.of(time_per_call_us(functools.partial(router.classify, event), counts))
            if base is None:
                base = summary.p50
            rows.append(
                Row(
                    group="routing",
                    name=f"classify {kind}, {n} fed",
                    unit="us",
                    summary=summary,
                    baseline=f"classify {kind}, 1 fed",
                    ratio=ratio(summary.p50, base),
                    target="flat (~1.0)",
                    extra={"federations": n, "registered_hashes": n * HASHES_PER_FEDERATION},
                )
            )
    return rows


REGISTRATION_COUNTS = (10_000, 40_000, 80_000)


def registration_rows(counts: MicroCounts, sizes: tuple[int, ...] = REGISTRATION_COUNTS) -> list[Row]:
    """Loading n registered payment hashes into the router one by one, as the gateway did at
    start (issue 15: each add copied the table, 80,000 took over lightningd's 60 s init
    timeout): microseconds per hash, which must stay flat as n grows."""
    rows: list[Row] = []
    base: float | None = None
    for n in sizes:
        hashes = [(_hash(0, j), _fid(0)) for j in range(n)]

        def load(hashes: list[tuple[str, FederationId]] = hashes) -> None:
            router = HtlcRouter()
            for h, f in hashes:
                router.add_hash(h, f)

        samples = max(3, counts.samples // 10)
        per_hash = [t / n for t in time_per_call_us(load, MicroCounts(samples=samples, batch=1))]
        summary = Summary.of(per_hash)
        base = base or summary.p50
        rows.append(
            Row(
                group="registrations",
                name=f"router: add {n} registered hashes, per hash",
                unit="us",
                summary=summary,
                baseline=f"router: add {sizes[0]} registered hashes, per hash",
                ratio=ratio(summary.p50, base),
                target="flat (~1.0): O(1) per registration",
                extra={"registered_hashes": n},
            )
        )
    return rows


def _hook_request_line(onion: dict[str, Any], htlc: dict[str, Any]) -> str:
    """The JSON-RPC line lightningd writes for an htlc_accepted hook call."""
    return json.dumps(
        {"jsonrpc": "2.0", "id": 42, "method": "htlc_accepted", "params": {"onion": onion, "htlc": htlc}}
    )


def hook_rows(counts: MicroCounts, federations: int = 20) -> list[Row]:
    """The plugin's path for an unrelated HTLC: HtlcEvent.from_hook + router.classify (router
    holding `federations` federations). Reference: decoding the hook's JSON line, which pyln
    does for every hook call before the plugin's code runs."""
    router = populated_router(federations)
    onion, htlc = forward_payload("700x1x0", "ab" * 32, 10_000, 10_100, HEIGHT + 80, HEIGHT)
    line = _hook_request_line(onion, htlc)

    def hook() -> object:
        return router.classify(HtlcEvent.from_hook(onion, htlc)).owner is HtlcOwner.UNRELATED

    base = Summary.of(time_per_call_us(lambda: json.loads(line), counts))
    ours = Summary.of(time_per_call_us(hook, counts))
    return [
        Row(
            group="hook",
            name="reference: json.loads of the hook request",
            unit="us",
            summary=base,
            note="pyln does this for every hook call anyway",
        ),
        Row(
            group="hook",
            name=f"unrelated HTLC: from_hook + classify ({federations} fed)",
            unit="us",
            summary=ours,
            baseline="reference: json.loads of the hook request",
            ratio=ratio(ours.p50, base.p50),
            target="a few us; no I/O",
        ),
    ]
