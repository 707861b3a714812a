"""`make bench` scenario 7 (the official Fedimint client through gateway A) still runs to the end.

Structure only: every row has samples (or, without node or the npm package, says why it has
none). Timings are never judged here; they belong to `make bench`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import run
from bench.fedimint_regtest import GROUP, RECEIVE, SEND
from contrib.official_client.driver import missing_requirements

pytestmark = pytest.mark.regtest


def test_quick_fedimint_scenario_runs_with_real_lightningd(tmp_path: Path) -> None:
    args = ["--quick", "--only", GROUP, "--no-doc", "--results-dir", str(tmp_path)]
    assert run.main(args) == 0
    (out,) = tmp_path.glob("*-quick.json")
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"] if r["group"] == GROUP}
    missing = missing_requirements()
    if missing:
        assert not rows[RECEIVE]["available"] and "official Fedimint client missing" in rows[RECEIVE]["note"]
        pytest.skip(f"OFFICIAL CLIENT MISSING, scenario 7 not measured: {'; '.join(missing)}")
    assert len(rows) == 5, sorted(rows)
    for name in (RECEIVE, SEND):
        assert rows[name]["summary"]["n"] == 3 and rows[name]["ratio"] > 0, rows[name]
    at_gateway = next(r for n, r in rows.items() if "at gateway A" in n)
    assert at_gateway["summary"]["n"] == 3  # every send is in A's payment journal
