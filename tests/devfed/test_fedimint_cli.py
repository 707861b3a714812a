"""`devfed run --api fedimint` (alone and next to the devfed dialects) as a process."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest

from contrib.devfed.fedimint.store import FedimintStore
from fedimint_gw.fedimint.config import parse_client_config
from fedimint_gw.fedimint.invite import parse_invite_code

START_TIMEOUT = 60


@pytest.mark.parametrize(
    ("api", "invites"),
    [pytest.param("fedimint", 1, id="fedimint"), pytest.param("1,fedimint", 2, id="devfed-and-fedimint")],
)
@pytest.mark.parametrize("lnv2", [False, True], ids=["mint", "mint+lnv2"])
async def test_run_serves_the_fedimint_family(tmp_path: Path, api: str, invites: int, lnv2: bool) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "contrib.devfed.cli",
        "run",
        "--api",
        api,
        "--data-dir",
        str(tmp_path),
        "--fedimint-fee-base-msat",
        "100",
        *(["--fedimint-lnv2"] if lnv2 else []),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        lines = [
            (await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)).decode().strip()
            for _ in range(invites)
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), START_TIMEOUT)
    status = json.loads((tmp_path / "fedimint" / "fedimint-status.json").read_text())
    assert lines[0] == status["invite_code"]
    assert parse_invite_code(lines[0]).federation_id.hex == status["federation_id"]
    assert len(status["guardian_urls"]) == 4
    store = FedimintStore(tmp_path / "fedimint" / "fedimint.sqlite")
    try:
        config = parse_client_config(json.loads(store.get_meta("client_config") or "{}"))
    finally:
        store.close()
    assert sorted(m.kind for m in config.modules.values()) == (["lnv2", "mint"] if lnv2 else ["mint"])
    if invites == 2:
        assert (tmp_path / "status.json").exists()
        assert json.loads((tmp_path / "status.json").read_text())["invite_code"] == lines[1]
    assert proc.returncode == 0
