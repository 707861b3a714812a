"""The three lightningd nodes: payer, gateway A and gateway B, and the channels between them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from pyln.client import LightningRpc

from contrib.regtest.bitcoin import BitcoinRpc, mine
from contrib.regtest.procs import Daemon, free_ports, spawn, wait_for
from contrib.regtest.state import GATEWAYS, NODE_NAMES, RPC_PASSWORD, RPC_USER, NetworkState, repo_root

CHANNEL_SAT = 2_000_000
PUSH_MSAT = 500_000_000
GATEWAY_CHANNEL_SAT = 1_000_000
ONCHAIN_BTC = 1


@dataclass
class Node:
    """One lightningd, reached over its JSON-RPC socket."""

    name: str
    rpc: LightningRpc

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Call ``method`` with named parameters."""
        return cast(dict[str, Any], self.rpc.call(method, params))

    @property
    def node_id(self) -> str:
        """The node's public key."""
        return str(self.call("getinfo")["id"])


def node(state: NetworkState, name: str) -> Node:
    """A client for node ``name`` of a started network."""
    return Node(name, LightningRpc(str(state.rpc_file(name))))


def lightning_cli(state: NetworkState, name: str) -> list[str]:
    """The ``lightning-cli`` command line for node ``name``."""
    return ["lightning-cli", f"--lightning-dir={state.lightning_dir(name)}", "--network=regtest"]


def _config(state: NetworkState, name: str, port: int, api_port: int | None) -> str:
    ldir = state.lightning_dir(name)
    lines = [
        "network=regtest",
        f"alias=regtest-{name}",
        f"addr=127.0.0.1:{port}",
        "bitcoin-rpcconnect=127.0.0.1",
        f"bitcoin-rpcport={state.bitcoind['rpcport']}",
        f"bitcoin-rpcuser={RPC_USER}",
        f"bitcoin-rpcpassword={RPC_PASSWORD}",
        f"bitcoin-datadir={state.bitcoind['datadir']}",
        f"log-file={ldir / 'log'}",
        "log-level=debug",
        "disable-dns",
        "autoconnect-seeker-peers=0",
        # regtest conveniences: fast gossip and block polling (need --developer)
        "dev-fast-gossip",
        "dev-bitcoind-poll=1",
    ]
    if api_port is not None:
        lines += [
            f"important-plugin={repo_root() / 'plugin' / 'fedimint-gw'}",
            f"fedimint-gw-api-bind=127.0.0.1:{api_port}",
            "xpay-slow-mode=true",  # fedimint-gw refuses to start without it
        ]
    return "\n".join(lines) + "\n"


def start_nodes(state: NetworkState) -> dict[str, Node]:
    """Start payer, A and B (A and B with the plugin as ``important-plugin``); wait for them."""
    ports = free_ports(len(NODE_NAMES) + len(GATEWAYS))
    daemons: dict[str, Daemon] = {}
    api_ports = dict(zip(GATEWAYS, ports[len(NODE_NAMES) :], strict=True))
    for name, port in zip(NODE_NAMES, ports[: len(NODE_NAMES)], strict=True):
        ldir = state.lightning_dir(name)
        (ldir / "regtest").mkdir(parents=True, exist_ok=True)
        (ldir / "config").write_text(_config(state, name, port, api_ports.get(name)))
        cmd = ["lightningd", f"--lightning-dir={ldir}", "--developer"]
        state.nodes[name] = {"lightning_dir": str(ldir), "port": port}
        out = state.base / "logs" / f"lightningd-{name}.out"
        daemons[name] = spawn(f"lightningd-{name}", cmd, out, str(ldir))
        state.add(daemons[name])
    nodes = {name: node(state, name) for name in NODE_NAMES}
    for name, n in nodes.items():
        log = state.lightning_dir(name) / "log"
        d = daemons[name]
        info = wait_for(f"lightningd {name} (see {log})", partial(n.call, "getinfo"), 60, watch=d)
        state.nodes[name]["id"] = info["id"]
        if name in GATEWAYS:
            gw = wait_for(f"the plugin in {name} (see {log})", partial(n.call, "fedimint-info"), 60, watch=d)
            state.nodes[name]["api_url"] = gw["api_url"]
    state.save()
    return nodes


def _synced(n: Node, height: int) -> bool:
    return int(n.call("getinfo")["blockheight"]) >= height


def _has_funds(n: Node, height: int) -> bool:
    return _synced(n, height) and any(o["status"] == "confirmed" for o in n.call("listfunds")["outputs"])


def _channels_normal(n: Node, height: int) -> bool:
    channels = n.call("listpeerchannels")["channels"]
    return _synced(n, height) and all(c["state"] == "CHANNELD_NORMAL" for c in channels)


def _knows_channels(n: Node, halves: int) -> bool:
    return len(n.call("listchannels")["channels"]) >= halves


def fund_nodes(nodes: dict[str, Node], wallet: BitcoinRpc) -> int:
    """Send each node ``ONCHAIN_BTC`` on-chain, confirm, wait until every node sees it."""
    for n in nodes.values():
        wallet.call("sendtoaddress", n.call("newaddr", addresstype="bech32")["bech32"], ONCHAIN_BTC)
    height = mine(wallet, 1)
    for n in nodes.values():
        wait_for(f"{n.name} to see its on-chain funds", partial(_has_funds, n, height), 60)
    return height


def open_channels(state: NetworkState, nodes: dict[str, Node], wallet: BitcoinRpc) -> None:
    """payer→A and payer→B (part pushed to the gateway), A→B; confirm and wait for gossip."""
    payer, a = nodes["payer"], nodes["a"]

    def peer(name: str) -> str:
        return f"{state.nodes[name]['id']}@127.0.0.1:{state.nodes[name]['port']}"

    payer.call(
        "multifundchannel",
        destinations=[
            {"id": peer("a"), "amount": CHANNEL_SAT, "push_msat": PUSH_MSAT},
            {"id": peer("b"), "amount": CHANNEL_SAT, "push_msat": PUSH_MSAT},
        ],
    )
    a.call("connect", id=peer("b"))
    a.call("fundchannel", id=state.nodes["b"]["id"], amount=GATEWAY_CHANNEL_SAT)
    wait_for("the funding transactions in the mempool", lambda: len(wallet.call("getrawmempool")) >= 2, 30)
    height = mine(wallet, 6)  # 6 confirmations: channels are announced
    for n in nodes.values():
        wait_for(f"{n.name}'s channels to be CHANNELD_NORMAL", partial(_channels_normal, n, height), 90)
    for n in nodes.values():
        # 3 public channels, one entry per direction
        wait_for(f"{n.name} to learn the 3 public channels (gossip)", partial(_knows_channels, n, 6), 120)
