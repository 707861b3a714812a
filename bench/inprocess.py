"""In-process scenarios: flow speed at 1/10/100 in flight, and the profile of each flow."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.flows import FLOW_NAMES, FlowBench, inprocess_env, make_flow, run_batch
from bench.profiling import ThreadProfilers, breakdown, profile_phase
from bench.stats import Row, Summary, ratio
from tests.regtest.devfed_proc import DevfedProcess

Tick = Callable[[str], None]


@dataclass(frozen=True)
class FlowCounts:
    """Payments per in-flight level, and payments profiled per flow."""

    levels: tuple[tuple[int, int], ...] = ((1, 30), (10, 50), (100, 100))  # (in flight, payments)
    profiled: int = 20


def _counter(tick: Tick, label: str, total: int) -> Callable[[], None]:
    done = itertools.count(1)
    return lambda: tick(f"{label}: {next(done)}/{total}")


async def flow_speed(tmp: Path, counts: FlowCounts, tick: Tick) -> list[Row]:
    """Each flow at every in-flight level: latency p50/p90/p99 and payments per second."""
    rows: list[Row] = []
    procs: list[DevfedProcess] = []
    ids = itertools.count(1)
    notes = sum(n for _, n in counts.levels) + 5
    try:
        async with inprocess_env(tmp / "speed") as env:
            for name in FLOW_NAMES:
                tick(f"flow speed: setting up {name}")
                flow = await make_flow(env, name, ids, notes, procs)
                base_rate: float | None = None
                for in_flight, count in counts.levels:
                    batch = await run_batch(
                        flow,
                        count,
                        in_flight,
                        _counter(tick, f"flow speed: {name}, {in_flight} in flight", count),
                    )
                    base_rate = base_rate or batch.rate
                    rows.append(
                        Row(
                            group="flow speed",
                            name=f"{name}, {in_flight} in flight",
                            unit="ms",
                            summary=Summary.of([x * 1000 for x in batch.latencies]),
                            rate=batch.rate,
                            baseline=f"{name}, 1 in flight (throughput)",
                            ratio=ratio(batch.rate, base_rate),
                            note="ratio: payments/s vs 1 in flight",
                        )
                    )
    finally:
        for proc in procs:
            proc.stop()
    return rows


async def profile_flows(tmp: Path, counts: FlowCounts, tick: Tick) -> dict[str, Any]:
    """cProfile of each flow's gateway part, one payment at a time: where the time goes."""
    threads = ThreadProfilers()
    threads.install()  # before the gateway opens its database: its thread gets a profiler
    procs: list[DevfedProcess] = []
    out: dict[str, Any] = {}
    try:
        async with inprocess_env(tmp / "profile") as env:
            threads.uninstall()
            ids = itertools.count(1)
            for name in FLOW_NAMES:
                tick(f"profile: {name}")
                flow: FlowBench = await make_flow(env, name, ids, counts.profiled + 2, procs)
                steps = [await flow.prepare() for _ in range(counts.profiled)]
                await (await flow.prepare())()  # warm-up payment, not profiled
                phases: list[Any] = []
                with profile_phase(threads, phases):
                    for step in steps:
                        await step()
                out[name] = breakdown(phases[0], counts.profiled)
    finally:
        threads.uninstall()
        for proc in procs:
            proc.stop()
    return out
