"""Percentiles, summaries and result rows: pure functions, no I/O."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Summary:
    """p50/p90/p99/min/max/mean of one set of samples, in the samples' unit."""

    n: int
    p50: float
    p90: float
    p99: float
    min: float
    max: float
    mean: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        """Summarise `samples` (at least one)."""
        return cls(
            n=len(samples),
            p50=percentile(samples, 50),
            p90=percentile(samples, 90),
            p99=percentile(samples, 99),
            min=min(samples),
            max=max(samples),
            mean=sum(samples) / len(samples),
        )


@dataclass(frozen=True)
class Row:
    """One line of the result table.

    `value` is what the ratio compares (p50 latency, or throughput for rate rows);
    `ratio` = value / the baseline row's value measured in the same run.
    """

    group: str
    name: str
    unit: str
    summary: Summary | None = None
    rate: float | None = None  # payments per second, for throughput rows
    baseline: str | None = None
    ratio: float | None = None
    target: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.summary is not None or self.rate is not None

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["available"] = self.available
        return body


def ratio(value: float | None, base: float | None) -> float | None:
    """value / base, or None when either is missing or the base is zero."""
    if value is None or base is None or base == 0:
        return None
    return value / base


def unavailable(group: str, name: str, target: str, why: str) -> Row:
    """A row for a scenario that cannot be measured (not implemented, no binaries...)."""
    return Row(group=group, name=name, unit="", target=target, note=why)


def selected(only: str | None, group: str) -> bool:
    """Whether `--only NAME` selects a scenario group (a case-insensitive substring match)."""
    return only is None or only.lower() in group.lower()


def latency_row(
    group: str,
    name: str,
    samples: list[float],
    base: str | None,
    base_samples: list[float] | None,
    target: str,
    note: str = "",
) -> Row:
    """A row of latencies (`samples` in seconds, shown in ms) with its ratio of p50 to the baseline's."""
    summary = Summary.of([x * 1000 for x in samples])
    base_p50 = Summary.of([x * 1000 for x in base_samples]).p50 if base_samples else None
    return Row(
        group,
        name,
        "ms",
        summary,
        baseline=base,
        ratio=ratio(summary.p50, base_p50),
        target=target,
        note=note,
    )
