"""Driving the network by hand: the env file, the printed how-to, and the ``wallet`` helper."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from contrib.regtest.bitcoin import bitcoin_cli
from contrib.regtest.lightning import lightning_cli
from contrib.regtest.state import ENV_FILE, FEDERATIONS, NODE_NAMES, NetworkState, repo_root
from contrib.regtest.users import WalletUser, claim_id


def _q(parts: list[str]) -> str:
    return " ".join(shlex.quote(p) for p in parts)


def _devfed(state: NetworkState) -> str:
    return f"(cd {shlex.quote(str(repo_root()))} && {shlex.quote(state.python)} -m contrib.devfed.cli"


def _launcher(state: NetworkState) -> str:
    return f"(cd {shlex.quote(str(repo_root()))} && {shlex.quote(state.python)} -m contrib.regtest.launcher"


def write_env(state: NetworkState) -> Path:
    """Write ``<dir>/env`` (bash/zsh): ``lcli-*``, ``bcli``, ``mine``, ``devfed``, ``wallet-*``..."""
    lines = [
        "# fedimint-gw regtest network: `source` this file (bash or zsh).",
        f"export REGTEST_DIR={shlex.quote(str(state.base))}",
    ]
    for name in NODE_NAMES:
        lines.append(f'lcli-{name}() {{ {_q(lightning_cli(state, name))} "$@"; }}')
    lines += [
        f'bcli() {{ {_q(bitcoin_cli(state))} "$@"; }}',
        'mine() { bcli generatetoaddress "${1:-1}" "$(bcli getnewaddress)"; }',
        f'devfed() {{ {_devfed(state)} "$@"); }}',
    ]
    for spec in FEDERATIONS:
        fed = state.federations[spec.key]
        wallet = state.wallets[f"user-{spec.key}"]["path"]
        up = spec.key.upper()
        base = f"--dir {shlex.quote(str(state.base))}"
        lines += [
            f"export INVITE_{up}={shlex.quote(str(fed['invite_code']))}",
            f"export ADMIN_{up}={shlex.quote(str(fed['admin_url']))}",
            f"export FED_{up}={fed['federation_id']}",
            f'wallet-{spec.key}() {{ devfed wallet --wallet {shlex.quote(wallet)} "$@"; }}',
            f'lnwallet-{spec.key}() {{ {_launcher(state)} wallet {base} user-{spec.key} "$@"); }}',
        ]
    fm = state.federations.get("fm")
    if fm is not None:
        lines += [
            f"export INVITE_FM={shlex.quote(str(fm['invite_code']))}",
            f"export ADMIN_FM={shlex.quote(str(fm['admin_url']))}",
            f"export FED_FM={fm['federation_id']}",
        ]
    path = state.base / ENV_FILE
    path.write_text("\n".join(lines) + "\n")
    return path


def overview(state: NetworkState) -> str:
    """Nodes and federations, one line each."""
    out = ["Lightning nodes:"]
    for name in NODE_NAMES:
        n = state.nodes[name]
        api = f"  gateway API {n['api_url']}" if "api_url" in n else ""
        out.append(f"  {name:<6} {n['id']}  p2p 127.0.0.1:{n['port']}{api}")
    out.append(f"bitcoind: RPC 127.0.0.1:{state.bitcoind['rpcport']}  datadir {state.bitcoind['datadir']}")
    out.append("Federations (4 guardians, threshold 3, following bitcoind):")
    for spec in FEDERATIONS:
        fed = state.federations[spec.key]
        out.append(
            f"  {spec.key:<4} {spec.name:<13} API {spec.api:<4} gateway {spec.gateway.upper()}"
            f"  id {str(fed['federation_id'])[:16]}…  admin {fed['admin_url']}"
        )
    fm = state.federations.get("fm")
    if fm is not None:
        out.append("For the official Fedimint client (Fedimint's protocol: mint, ln; block counter):")
        out.append(
            f"  fm   {fm['name']:<13} gateway A  id {str(fm['federation_id'])[:16]}…  admin {fm['admin_url']}"
        )
    return "\n".join(out)


def how_to(state: NetworkState) -> str:
    """What to type to keep playing, with and without the env file."""
    env = state.base / ENV_FILE
    w1 = state.wallets["user-v1"]["path"]
    return f"""{overview(state)}

The network keeps running. Drive it by hand:
  source {env}
  lcli-payer getinfo                  # also lcli-a, lcli-b (gateways A and B)
  lcli-a fedimint-info                # the gateway plugin on A; also fedimint-balances, fedimint-payments
  lcli-a fedimint-migrate $FED_V1 $FED_V12 10000000  # A's own ecash v1 -> v1+v2, exchanged with B
  bcli getblockcount; mine 6          # bitcoind (devfeds follow its height)
  wallet-v1 balance                   # devfed wallet CLI of user-v1 (also wallet-v12, wallet-v2):
  wallet-v2 faucet 1000000            #   join | balance | faucet MSAT | send MSAT | receive ECASH | info
  lnwallet-v1 invoice 5000000         # Lightning into user-v1 through its gateway: prints bolt11, claim_id
  lcli-payer xpay <bolt11>            #   the payer node pays it, then
  lnwallet-v1 claim <claim_id>        #   the user claims the ecash
  lnwallet-v2 pay <bolt11>            # user-v2 pays an invoice (e.g. `lcli-payer invoice 1000000 l1 d`)
  devfed gateways list --admin $ADMIN_V2
Without the env file:
  {_q(lightning_cli(state, "a"))} fedimint-info
  {_q(bitcoin_cli(state))} getblockcount
  {state.python} -m contrib.devfed.cli wallet --wallet {w1} balance
Invite codes: $INVITE_V1, $INVITE_V12, $INVITE_V2, $INVITE_FM (in {env})
Everything is in {state.base / "network.json"}.
Logs: {state.base / "logs"}/, {state.base}/lightning-*/log, {state.bitcoind["datadir"]}/debug.log
Stop everything: make regtest-stop   (or: python -m contrib.regtest.launcher stop --dir {state.base})"""


def wallet_command(state: NetworkState, name: str, action: str, args: list[str]) -> dict[str, Any]:
    """``launcher wallet USER invoice MSAT | claim CLAIM_ID | pay BOLT11 | balance``."""
    if name not in state.wallets:
        raise ValueError(f"no wallet {name!r}; known: {', '.join(sorted(state.wallets))}")
    fed = state.federations[str(state.wallets[name]["federation"])]
    gw = state.nodes[str(fed["gateway"])]
    user = WalletUser(Path(state.wallets[name]["path"]))
    if action == "invoice":
        receive = user.receive(str(gw["id"]), str(gw["api_url"]), int(args[0]), "regtest: by hand")
        return {"bolt11": receive.bolt11, "payment_hash": receive.payment_hash, "claim_id": claim_id(receive)}
    if action == "claim":
        return {"claimed_msat": user.claim(args[0]), "balance_msat": user.balance()}
    if action == "pay":
        from fedimint_gw.lightning import bolt11

        amount = bolt11.decode(args[0]).amount_msat or 0
        fee = int(fed["fees"]["base_msat"]) + amount * int(fed["fees"]["ppm"]) // 1_000_000
        key = user.gateway_key(str(gw["id"]), str(gw["api_url"]))
        answer = user.pay(args[0], str(gw["api_url"]), key, fee)
        return {**answer, "fee_budget_msat": fee, "balance_msat": user.balance()}
    if action == "balance":
        return {"balance_msat": user.balance()}
    raise ValueError(f"unknown action {action!r}: invoice MSAT | claim CLAIM_ID | pay BOLT11 | balance")


def dump(value: object) -> str:
    """Pretty JSON for the CLI."""
    return json.dumps(value, indent=2)
