"""`python -m bench.run [--quick] [--only NAME] [--no-regtest]`: run, print, record.

Prints the table (figures, ratio to the baseline measured in the same run, target) and writes
bench/results/<date>.json and the generated block of docs/performance.md. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import report
from bench.inprocess import FlowCounts, flow_speed, profile_flows
from bench.memory import measure, memory_rows
from bench.micro import MicroCounts, hook_rows, registration_rows, routing_rows
from bench.regtest_net import binaries_missing
from bench.stats import Row, selected

REPO = Path(__file__).resolve().parents[1]
MEMORY_FEDERATIONS = 20


@dataclass(frozen=True)
class Plan:
    """How much of everything to run."""

    micro: MicroCounts
    flows: FlowCounts
    regtest: Any  # bench.regtest.RegtestCounts (imported lazily: pyln-testing)

    @classmethod
    def make(cls, quick: bool) -> Plan:
        from bench.regtest import RegtestCounts

        if quick:
            return cls(
                MicroCounts(samples=10, batch=500),
                FlowCounts(levels=((1, 5), (10, 10)), profiled=3),
                RegtestCounts(per_flow=3, throughput=20, in_flight=5),
            )
        return cls(MicroCounts(), FlowCounts(), RegtestCounts())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few iterations: a smoke check, not figures")
    parser.add_argument(
        "--only", metavar="NAME", help="scenarios whose group contains NAME (e.g. routing, 7 fedimint)"
    )
    parser.add_argument(
        "--no-regtest", action="store_true", help="skip the scenarios needing lightningd/bitcoind"
    )
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/performance.md")
    parser.add_argument(
        "--results-dir", type=Path, default=REPO / "bench" / "results", help="where the JSON results go"
    )
    return parser.parse_args(argv)


async def _inprocess(
    plan: Plan, only: str | None, tmp: Path, tick: report.Progress
) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    profile: dict[str, Any] = {}
    if selected(only, "routing"):
        tick("routing cost")
        rows += routing_rows(plan.micro)
    if selected(only, "hook"):
        tick("hook cost")
        rows += hook_rows(plan.micro)
    if selected(only, "registrations"):
        tick("registrations: loading the router")
        rows += registration_rows(plan.micro)
    if selected(only, "memory"):
        tick("memory: 20 federations")
        rows += memory_rows(await measure(tmp / "memory", MEMORY_FEDERATIONS), MEMORY_FEDERATIONS)
    if selected(only, "flow speed"):
        rows += await flow_speed(tmp, plan.flows, tick)
    if selected(only, "profile"):
        profile = await profile_flows(tmp, plan.flows, tick)
    return rows, profile


def _regtest(plan: Plan, only: str | None, tmp: Path, tick: report.Progress) -> list[Row]:
    from bench.regtest import run_regtest
    from bench.regtest_net import Network

    net = Network(tmp / "regtest")
    try:
        tick("regtest: starting bitcoind and 6 lightningd")
        net.start()
        return asyncio.run(run_regtest(net, plan.regtest, only, tick))
    finally:
        tick("regtest: stopping")
        net.close()


def main(argv: list[str] | None = None) -> int:
    """Run the selected scenarios; print and record the results. Exit 0 unless a flow broke."""
    args = parse_args(argv)
    plan = Plan.make(args.quick)
    tick = report.Progress()
    started = time.monotonic()
    rows: list[Row] = []
    regtest_skipped = "--no-regtest" if args.no_regtest else binaries_missing()
    with tempfile.TemporaryDirectory(prefix="fedimint-gw-bench-") as tmpdir:
        tmp = Path(tmpdir)
        inproc_rows, profile = asyncio.run(_inprocess(plan, args.only, tmp, tick))
        rows += inproc_rows
        if regtest_skipped is None:
            rows += _regtest(plan, args.only, tmp, tick)
        else:
            from bench.regtest import pending_rows

            rows += [r for r in pending_rows() if selected(args.only, r.group)]
    tick.done()
    duration = time.monotonic() - started
    when = datetime.datetime.now(datetime.timezone.utc)
    mode = "quick" if args.quick else "full"
    header = f"fedimint-gw bench {when:%Y-%m-%d %H:%M} UTC, {mode} run in {duration:.0f} s" + (
        f"; regtest scenarios skipped: {regtest_skipped}" if regtest_skipped else ""
    )
    print(header)
    print(report.format_table(rows))
    if profile:
        print("\nWhere the time goes (cProfile, one payment at a time):")
        print(report.profile_markdown(profile))
    meta = {"machine": report.machine(), "versions": report.versions(REPO)}
    data = {
        "date": when.isoformat(),
        "mode": "quick" if args.quick else "full",
        "only": args.only,
        "regtest_skipped": regtest_skipped,
        "duration_s": duration,
        **meta,
        "rows": [r.to_json() for r in rows],
        "profile": profile,
    }
    out = args.results_dir / f"{when:%Y-%m-%dT%H%M%S}{'-quick' if args.quick else ''}.json"
    report.write_json(out, data)
    print(f"\nresults: {out}")
    if not args.no_doc and not args.quick and args.only is None:
        report.update_doc(REPO / "docs" / "performance.md", _doc_block(header, rows, profile, meta, out))
        print("docs/performance.md updated")
    return 0


def _doc_block(header: str, rows: list[Row], profile: dict[str, Any], meta: dict[str, Any], out: Path) -> str:
    m, v = meta["machine"], meta["versions"]
    dirty = " (dirty)" if v["git_dirty"] else ""
    return "\n\n".join(
        [
            f"_{header}._ Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_mb']} MB. "
            f"Versions: Python {v['python']}, lightningd {v['lightningd']}, {v['bitcoind']}, "
            f"fedimint-gw {v['fedimint_gw']}, commit `{v['git_commit'][:12]}`{dirty}. "
            f"Raw figures: `{out.relative_to(REPO) if out.is_relative_to(REPO) else out}`.",
            "### Latest table\n\n" + report.markdown_table(rows),
            "### Where the time goes (cProfile, in-process, one payment at a time)\n\n"
            + report.profile_markdown(profile),
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
