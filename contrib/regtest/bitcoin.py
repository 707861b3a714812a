"""The regtest bitcoind: start it detached, talk to it over JSON-RPC, mine blocks."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from functools import partial
from typing import Any

from contrib.regtest.procs import LaunchError, free_ports, spawn, wait_for
from contrib.regtest.state import RPC_PASSWORD, RPC_USER, NetworkState

WALLET = "regtest"


class BitcoinRpc:
    """A small JSON-RPC client for one bitcoind (optionally one of its wallets)."""

    def __init__(self, port: int, wallet: str | None = None) -> None:
        self.url = f"http://127.0.0.1:{port}/" + (f"wallet/{wallet}" if wallet else "")
        token = base64.b64encode(f"{RPC_USER}:{RPC_PASSWORD}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method: str, *params: Any) -> Any:
        """Call ``method``; bitcoind errors become :class:`LaunchError`."""
        body = json.dumps({"jsonrpc": "1.0", "id": "regtest", "method": method, "params": list(params)})
        req = urllib.request.Request(self.url, body.encode(), self._headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            answer = json.loads(exc.read() or b"{}")
        if answer.get("error"):
            raise LaunchError(f"bitcoind {method}: {answer['error'].get('message')}")
        return answer.get("result")


def start_bitcoind(state: NetworkState) -> BitcoinRpc:
    """Start bitcoind (regtest, loopback only), create its wallet and mine 101 blocks.

    Returns the wallet RPC client.
    """
    datadir = state.base / "bitcoind"
    datadir.mkdir(parents=True, exist_ok=True)
    rpcport, p2pport = free_ports(2)
    conf = [
        "regtest=1",
        "server=1",
        "txindex=1",
        "fallbackfee=0.00001",
        f"rpcuser={RPC_USER}",
        f"rpcpassword={RPC_PASSWORD}",
        "[regtest]",
        f"rpcport={rpcport}",
        "rpcbind=127.0.0.1",
        "rpcallowip=127.0.0.1",
        f"port={p2pport}",
        "listen=0",
        "listenonion=0",
        "dnsseed=0",
        "fixedseeds=0",
        "rpcthreads=16",
    ]
    (datadir / "bitcoin.conf").write_text("\n".join(conf) + "\n")
    state.bitcoind = {"datadir": str(datadir), "rpcport": rpcport, "port": p2pport}
    log = datadir / "debug.log"
    cmd = ["bitcoind", f"-datadir={datadir}", "-printtoconsole=0", f"-debuglogfile={log}"]
    daemon = spawn("bitcoind", cmd, state.base / "logs" / "bitcoind.out", str(datadir))
    state.add(daemon)
    node = BitcoinRpc(rpcport)
    wait_for(f"bitcoind's RPC (see {log})", partial(node.call, "getblockchaininfo"), 60, watch=daemon)
    if WALLET not in node.call("listwallets"):
        try:
            node.call("loadwallet", WALLET)
        except LaunchError:
            node.call("createwallet", WALLET)
    wallet = BitcoinRpc(rpcport, WALLET)
    height = int(node.call("getblockcount"))
    if height < 101:
        mine(wallet, 101 - height)
    return wallet


def mine(wallet: BitcoinRpc, blocks: int) -> int:
    """Mine ``blocks`` blocks to the wallet; returns the new height."""
    address = wallet.call("getnewaddress")
    wallet.call("generatetoaddress", blocks, address)
    return int(wallet.call("getblockcount"))


def bitcoin_cli(state: NetworkState) -> list[str]:
    """The ``bitcoin-cli`` command line for this network (wallet included)."""
    return ["bitcoin-cli", f"-datadir={state.bitcoind['datadir']}", f"-rpcwallet={WALLET}"]
