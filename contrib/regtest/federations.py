"""The three devfed federations, the gateways joining them, their ecash, and the users' wallets."""

from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

from contrib.regtest.lightning import Node
from contrib.regtest.procs import Daemon, LaunchError, spawn, wait_for
from contrib.regtest.state import FEDERATIONS, NetworkState, repo_root
from contrib.regtest.users import WalletUser

GATEWAY_ECASH_MSAT = 500_000_000
USER_FAUCET_MSAT = 100_000_000


def devfed_cmd(state: NetworkState) -> list[str]:
    """``python -m contrib.devfed.cli`` with the launcher's interpreter."""
    return [state.python, "-m", "contrib.devfed.cli"]


def _status(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def start_federations(state: NetworkState) -> None:
    """Start v1-only, v1+v2 and v2-only devfeds (4 guardians each) following bitcoind."""
    daemons: dict[str, Daemon] = {}
    for spec in FEDERATIONS:
        data_dir = state.base / f"devfed-{spec.key}"
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "status.json").unlink(missing_ok=True)
        cmd = [
            *devfed_cmd(state),
            "run",
            "--name",
            spec.name,
            "--api",
            spec.api,
            "--data-dir",
            str(data_dir),
            "--bitcoind-rpc",
            state.bitcoind_url(),
        ]
        log = state.base / "logs" / f"devfed-{spec.key}.log"
        daemons[spec.key] = spawn(f"devfed-{spec.key}", cmd, log, str(data_dir), cwd=repo_root())
        state.add(daemons[spec.key])
        state.federations[spec.key] = {"name": spec.name, "api": spec.api, "data_dir": str(data_dir)}
    for spec in FEDERATIONS:
        fed = state.federations[spec.key]
        status_file = Path(fed["data_dir"]) / "status.json"
        status = wait_for(
            f"devfed {spec.name} (see logs/devfed-{spec.key}.log)",
            partial(_status, status_file),
            60,
            watch=daemons[spec.key],
        )
        fed.update(
            federation_id=status["federation_id"],
            invite_code=status["invite_code"],
            admin_url=status["admin_url"],
        )
    state.save()


def vet_gateways(state: NetworkState) -> None:
    """``devfed gateways add URL --admin ADMIN`` for both gateways on every federation serving v2."""
    for spec in FEDERATIONS:
        if "2" not in spec.api.split(","):
            continue
        admin = state.federations[spec.key]["admin_url"]
        for gw in ("a", "b"):
            cmd = [*devfed_cmd(state), "gateways", "add", state.nodes[gw]["api_url"], "--admin", admin]
            done = subprocess.run(cmd, cwd=repo_root(), capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                raise LaunchError(f"vetting gateway {gw} on {spec.name} failed: {done.stderr.strip()}")


def connect_gateways(state: NetworkState, nodes: dict[str, Node]) -> None:
    """``fedimint-connect``: A joins v1-only and v1+v2, B joins v2-only, then v1 and v1+v2 too."""
    for spec in FEDERATIONS:
        fed = state.federations[spec.key]
        joined = nodes[spec.gateway].call("fedimint-connect", invite_code=fed["invite_code"])
        fed["gateway"] = spec.gateway
        fed["gateway_api_version"] = joined.get("api_version")
        fed["scid"] = joined.get("scid")
        fed["fees"] = joined.get("fees", {"base_msat": 0, "ppm": 0})
    for key in COUNTERPARTY_JOINS:  # B also serves A's federations: the counterparty of migrations
        nodes["b"].call("fedimint-connect", invite_code=state.federations[key]["invite_code"])
    state.save()


PEER_CREDIT_MSAT = 100_000_000
COUNTERPARTY_JOINS = ("v1", "v12")  # B joins these too, so A can migrate its ecash through B
COUNTERPARTY_FUND = "v12"  # ... and holds ecash in v1+v2 to give


def peer_gateways(state: NetworkState, nodes: dict[str, Node]) -> str:
    """Peer gateway A with gateway B (``fedimint-peer-add`` on both sides) and record it."""
    a, b = state.nodes["a"], state.nodes["b"]
    nodes["a"].call(
        "fedimint-peer-add", node_id=b["id"], url=b["api_url"], credit_limit_msat=PEER_CREDIT_MSAT
    )
    added = nodes["b"].call(
        "fedimint-peer-add", node_id=a["id"], url=a["api_url"], credit_limit_msat=PEER_CREDIT_MSAT
    )
    if added.get("status") != "active":
        raise LaunchError(f"peering A and B did not activate the link: {added}")
    a["peers"], b["peers"] = [b["id"]], [a["id"]]
    state.save()
    return f"A and B peered, {PEER_CREDIT_MSAT} msat of credit each way"


def fund_gateways(state: NetworkState, nodes: dict[str, Node]) -> None:
    """A treasurer wallet per federation: faucet → ``send`` → ``fedimint-ecash-receive``."""
    for spec in FEDERATIONS:
        fed = state.federations[spec.key]
        treasurer = WalletUser(state.base / "wallets" / f"treasurer-{spec.key}.sqlite3")
        treasurer.join(fed["invite_code"])
        treasurer.faucet(GATEWAY_ECASH_MSAT)
        notes = treasurer.send_ecash(GATEWAY_ECASH_MSAT)
        got = nodes[spec.gateway].call(
            "fedimint-ecash-receive", federation_id=fed["federation_id"], notes=notes
        )
        if int(got["received_msat"]) != GATEWAY_ECASH_MSAT:
            raise LaunchError(f"gateway {spec.gateway} received {got['received_msat']} msat, not all")
        if spec.key == COUNTERPARTY_FUND:
            treasurer.faucet(GATEWAY_ECASH_MSAT)
            notes = treasurer.send_ecash(GATEWAY_ECASH_MSAT)
            nodes["b"].call("fedimint-ecash-receive", federation_id=fed["federation_id"], notes=notes)


def create_users(state: NetworkState) -> None:
    """One user wallet per federation (``user-v1``, ``user-v12``, ``user-v2``), faucet-funded."""
    for spec in FEDERATIONS:
        fed = state.federations[spec.key]
        path = state.base / "wallets" / f"user-{spec.key}.sqlite3"
        user = WalletUser(path)
        user.join(fed["invite_code"])
        user.faucet(USER_FAUCET_MSAT)
        state.wallets[f"user-{spec.key}"] = {
            "path": str(path),
            "federation": spec.key,
            "major": user.major(),
            "balance_msat": user.balance(),
        }
    state.save()
