"""Smoke tests of the benchmark's machinery: structure only, never timings."""

from __future__ import annotations

import json
from pathlib import Path

from bench import run
from bench.micro import FEDERATION_COUNTS, MicroCounts, hook_rows, routing_rows
from bench.report import format_table, markdown_table
from bench.stats import Summary, percentile


def test_routing_and_hook_measurements_have_the_expected_shape() -> None:
    counts = MicroCounts(samples=3, batch=20)
    rows = routing_rows(counts) + hook_rows(counts, federations=3)
    routing = [r for r in rows if r.group == "routing"]
    assert len(routing) == 4 * len(FEDERATION_COUNTS)
    assert {r.extra["federations"] for r in routing} == set(FEDERATION_COUNTS)
    assert [r.group for r in rows[-2:]] == ["hook", "hook"]
    for row in rows:
        assert row.unit == "us" and row.summary is not None
        assert row.summary.n == 3
        assert 0 < row.summary.min <= row.summary.p50 <= row.summary.max
        assert set(row.to_json()) >= {"group", "name", "summary", "ratio", "target", "available"}
    assert all(r.ratio is not None and r.ratio > 0 for r in routing)
    table = format_table(rows)
    assert all(r.name in table for r in rows)
    assert markdown_table(rows).count("\n") == len(rows) + 1


def test_percentiles_interpolate() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    s = Summary.of([5.0, 1.0, 3.0])
    assert (s.n, s.min, s.p50, s.max) == (3, 1.0, 3.0, 5.0)


def test_quick_inprocess_bench_runs_to_the_end(tmp_path: Path) -> None:
    """`make bench`'s in-process machinery (flows through the real services) still runs.

    It broke once when a refactor moved `Gateway.pay_invoice` and no test noticed. This checks
    the run finishes and reports every in-process group with samples; timings are not judged.
    """
    assert run.main(["--quick", "--no-regtest", "--no-doc", "--results-dir", str(tmp_path)]) == 0
    (out,) = tmp_path.glob("*-quick.json")
    rows = json.loads(out.read_text())["rows"]
    names = {r["name"] for r in rows if r["summary"] is not None}
    for flow in ("receive v1", "receive v2", "send v1", "send v2"):
        assert any(n.startswith(flow) for n in names), f"no samples for {flow}: {sorted(names)}"
    assert {r["group"] for r in rows} >= {"routing", "hook", "memory"}
