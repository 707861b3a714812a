"""Child process for the memory scenario: a Gateway (fake node) that joins federations.

Usage: python -m bench.memproc DIR PORT < invite codes (JSON list). Prints one JSON line
per stage with the process's own VmRSS/VmHWM (kB): imported, idle (started, no
federation), connected (all joined).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from pathlib import Path


def _report(stage: str, **extra: object) -> None:
    status = Path(f"/proc/{os.getpid()}/status").read_text().splitlines()
    mem = {k: int(v.split()[0]) for k, _, v in (s.partition(":") for s in status) if k in ("VmRSS", "VmHWM")}
    print(json.dumps({"stage": stage, **mem, **extra}), flush=True)


async def _main(tmp: Path, port: int, invites: list[str]) -> None:
    from fedimint_gw.clock import SystemClock
    from fedimint_gw.config import build_config
    from fedimint_gw.services.gateway import Gateway
    from tests.support.fake_node import FakeNode

    _report("imported")
    config = build_config(
        {
            "fedimint-gw-db": str(tmp / "gw.sqlite3"),
            "fedimint-gw-api-bind": f"127.0.0.1:{port}",
            "fedimint-gw-api-rate-limit": 0,  # the bench is one client making hundreds of requests
        },
        {"lightning-dir": str(tmp), "network": "regtest"},
    )
    gateway = Gateway(config, FakeNode(), SystemClock(), lambda m, lvl: None)
    await gateway.start()
    gc.collect()
    _report("idle")
    try:
        for code in invites:
            await gateway.federations.connect(code)
        gc.collect()
        _report("connected", federations=len(invites))
    finally:
        await gateway.stop()


def main() -> None:
    """Entry point (see the module docstring)."""
    asyncio.run(_main(Path(sys.argv[1]), int(sys.argv[2]), json.loads(sys.stdin.read())))


if __name__ == "__main__":
    main()
