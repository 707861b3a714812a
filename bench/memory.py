"""Memory: RSS of a gateway process idle and with N federations connected.

The gateway runs in a child process (bench.memproc) with the fake node, so its RSS is not
the benchmark's; the federations run in this process (in-process devfed, one listener per
guardian), half serving API v1 and half API v2.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
from ephemeral_port_reserve import reserve

from bench.stats import Row, Summary
from contrib.devfed.federation import FederationParams
from contrib.devfed.server import RunningFederation, start_federation

REPO = Path(__file__).resolve().parents[1]


async def measure(tmp: Path, federations: int) -> dict[str, dict[str, int]]:
    """Stage -> {VmRSS, VmHWM} (kB) of a gateway joining `federations` federations."""
    port = reserve()
    feds: list[RunningFederation] = []
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(federations):
                major = 1 + i % 2
                params = FederationParams(name=f"mem{i}", guardians=4, threshold=3, majors=(major,))
                fed = await start_federation(tmp / f"fed{i}", params)
                feds.append(fed)
                if major == 2:
                    url = f"http://127.0.0.1:{port}"
                    async with session.post(f"{fed.admin_url}/admin/gateways", json={"url": url}) as r:
                        r.raise_for_status()
        (tmp / "gw").mkdir(exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.memproc",
            str(tmp / "gw"),
            str(port),
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate(json.dumps([f.invite_code for f in feds]).encode())
        if proc.returncode != 0:
            raise RuntimeError(f"bench.memproc exited with {proc.returncode}")
        stages = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
        return {s["stage"]: {"VmRSS": s["VmRSS"], "VmHWM": s["VmHWM"]} for s in stages}
    finally:
        for fed in feds:
            await fed.stop()


def memory_rows(stages: dict[str, dict[str, int]], federations: int) -> list[Row]:
    """Rows: after imports, idle, with `federations` connected (MB); ratio to idle."""
    idle = stages["idle"]["VmRSS"] / 1024
    rows = []
    for stage, label in (
        ("imported", "gateway process: modules imported"),
        ("idle", "gateway process: idle (started, 0 federations)"),
        ("connected", f"gateway process: {federations} federations connected"),
    ):
        if stage not in stages:
            continue
        mb = stages[stage]["VmRSS"] / 1024
        rows.append(
            Row(
                group="memory",
                name=label,
                unit="MB",
                summary=Summary.of([mb]),
                baseline="idle" if stage == "connected" else None,
                ratio=mb / idle if stage == "connected" else None,
                note=f"peak {stages[stage]['VmHWM'] / 1024:.1f} MB",
            )
        )
    return rows
