"""The fourth federation: devfed speaking Fedimint's own protocol (mint + LNv1 ``ln``), on gateway A.

It is the federation the official Fedimint client (npm, under Node) joins in the demo. devfed runs
it with ``--api fedimint --fedimint-ln`` (its status file is ``<data-dir>/fedimint/...``); gateway A
joins it with ``fedimint-connect`` (adapter ``fedimint-lnv1``) and gets ecash from the faucet as
out-of-band notes (``fedimint-ecash-receive``), so it can fund incoming contracts.

A serves it at 0 msat + 0 ppm: the official client's LNv1 invoices carry no gateway fee (the
route hint's last hop is 0/0 and the offer is the invoice amount, as in Fedimint, where LNv1
receives are free), so a gateway charging for receives would refuse every one of them. The
demo's send row shows a gateway fee by setting one for that payment (see ``demo_fedimint``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.regtest.federations import devfed_cmd
from contrib.regtest.lightning import Node
from contrib.regtest.procs import LaunchError, spawn, wait_for
from contrib.regtest.state import NetworkState, repo_root
from fedimint_gw.fedimint.endpoints import bootstrap_client_config
from fedimint_gw.fedimint.invite import parse_invite_code

KEY = "fm"
NAME = "regtest-fedimint"
GATEWAY = "a"
STATUS_FILE = Path("fedimint") / "fedimint-status.json"
GATEWAY_ECASH_MSAT = 100_000_000  # the devfed faucet's limit per call
RECEIVE_FEES = {"base_msat": 0, "ppm": 0}


def _status(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # not there yet, or half written
        return None
    return dict(data) if isinstance(data, dict) and "invite_code" in data else None


def start_federation(state: NetworkState) -> str:
    """Start ``devfed run --api fedimint --fedimint-ln`` (4 guardians, threshold 3) and record it."""
    data_dir = state.base / f"devfed-{KEY}"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / STATUS_FILE).unlink(missing_ok=True)
    cmd = [*devfed_cmd(state), "run", "--name", NAME, "--api", "fedimint", "--fedimint-ln"]
    cmd += ["--data-dir", str(data_dir)]
    log = state.base / "logs" / f"devfed-{KEY}.log"
    daemon = spawn(f"devfed-{KEY}", cmd, log, str(data_dir), cwd=repo_root())
    state.add(daemon)
    status = wait_for(
        f"devfed {NAME} (see logs/devfed-{KEY}.log)",
        lambda: _status(data_dir / STATUS_FILE),
        60,
        watch=daemon,
    )
    state.federations[KEY] = {
        "name": NAME,
        "api": "fedimint (mint, ln)",
        "data_dir": str(data_dir),
        "federation_id": status["federation_id"],
        "invite_code": status["invite_code"],
        "admin_url": status["admin_url"],
    }
    state.save()
    return f"{NAME}: Fedimint's protocol (mint + ln), invite {str(status['invite_code'])[:24]}…"


async def _faucet_oob(invite: str, admin_url: str, amount_msat: int) -> str:
    async with aiohttp.ClientSession() as session:
        config = await bootstrap_client_config(parse_invite_code(invite), session)
        return (await faucet_notes(session, admin_url, config, amount_msat)).oob.encode()


def connect_and_fund(state: NetworkState, nodes: dict[str, Node]) -> str:
    """Gateway A joins the Fedimint federation at 0/0 fees and receives faucet ecash there."""
    fed = state.federations[KEY]
    gateway = nodes[GATEWAY]
    joined = gateway.call("fedimint-connect", invite_code=fed["invite_code"])
    if joined.get("adapter") != "fedimint-lnv1":
        adapter = joined.get("adapter")
        raise LaunchError(f"gateway A joined {NAME} with adapter {adapter!r}, not fedimint-lnv1")
    fid = str(joined["federation_id"])
    gateway.call("fedimint-setfees", federation_id=fid, **RECEIVE_FEES)
    notes = asyncio.run(_faucet_oob(str(fed["invite_code"]), str(fed["admin_url"]), GATEWAY_ECASH_MSAT))
    got = gateway.call("fedimint-ecash-receive", federation_id=fid, notes=notes)
    if int(got["received_msat"]) != GATEWAY_ECASH_MSAT:
        raise LaunchError(f"gateway A received {got['received_msat']} msat of {GATEWAY_ECASH_MSAT} in {NAME}")
    fed.update(
        gateway=GATEWAY,
        adapter=joined["adapter"],
        scid=joined.get("scid"),
        fees=dict(RECEIVE_FEES),
    )
    state.save()
    return f"gateway A serves {NAME} (fedimint-lnv1) with {GATEWAY_ECASH_MSAT} msat of ecash"
