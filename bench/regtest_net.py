"""The regtest network for the Lightning scenarios, built with pyln-testing's classes.

    l1 (payer) ── l2 (gateway A: the plugin) ── l3 (payee)
       │               └── l6 (gateway B: the plugin, peered with A)
       └───────── l4 (plain router, no plugin) ── l5 (payee)

Forwards l1→l2→l3 and l1→l4→l5 cross identical nodes, one with the plugin and one without.
Four devfed federations (processes) follow bitcoind on gateway A: two serve API v1, two API v2.
Gateway B has its own two (v1 and v2) for scenario 5, started only when it runs; the channel
l2→l6 carries the baseline (and a settlement of the peers' credit line). Scenario 7 starts one
more on A, speaking Fedimint's own protocol (mint + LNv1), for the official Fedimint client.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.regtest.devfed_proc import DevfedProcess, start_devfed, start_fedimint_devfed

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "plugin" / "fedimint-gw"
FEES = {"base_msat": 1000, "ppm": 1000}
FEDERATION_APIS = ("1", "2", "1", "2")
PEER_FEDERATION_APIS = ("1", "2")  # gateway B's


def binaries_missing() -> str | None:
    """Why the regtest scenarios cannot run here, or None."""
    missing = [b for b in ("lightningd", "bitcoind") if shutil.which(b) is None]
    return f"{' and '.join(missing)} not on PATH" if missing else None


def gateway_fee(amount_msat: int) -> int:
    return FEES["base_msat"] + amount_msat * FEES["ppm"] // 1_000_000


@dataclass
class Network:
    """Started daemons; `close()` stops everything this object started."""

    tmp: Path
    bitcoind: Any = None
    factory: Any = None
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=32))
    nodes: list[Any] = field(default_factory=list)
    feds: list[DevfedProcess] = field(default_factory=list)
    peer_feds: list[DevfedProcess] = field(default_factory=list)
    fedimint_feds: list[DevfedProcess] = field(default_factory=list)  # scenario 7
    api_url: str = ""
    peer_api_url: str = ""

    @property
    def payer(self) -> Any:
        return self.nodes[0]

    @property
    def gateway(self) -> Any:
        return self.nodes[1]

    @property
    def peer_gateway(self) -> Any:
        """Gateway B (l6), for scenario 5."""
        return self.nodes[5]

    def start(self) -> None:
        """bitcoind, six lightningd, channels announced, the gateways' API URLs."""
        os.environ.setdefault("RUST", "0")
        os.environ.setdefault("VALGRIND", "0")
        from ephemeral_port_reserve import reserve
        from pyln.testing.db import SqliteDbProvider
        from pyln.testing.utils import BitcoinD, LightningNode, NodeFactory

        self.bitcoind = BitcoinD(bitcoin_dir=str(self.tmp / "bitcoind"))
        self.bitcoind.start()
        self.bitcoind.generate_block(101)
        self.factory = NodeFactory(
            None,
            "bench",
            self.bitcoind,
            self.executor,
            directory=str(self.tmp),
            db_provider=SqliteDbProvider(str(self.tmp)),
            node_cls=LightningNode,
            jsonschemas={},
        )

        def gw() -> dict[str, Any]:
            return {
                "plugin": str(PLUGIN),
                "fedimint-gw-api-bind": f"127.0.0.1:{reserve()}",
                "xpay-slow-mode": "true",
                "fedimint-gw-fee-base-msat": FEES["base_msat"],
                "fedimint-gw-fee-ppm": FEES["ppm"],
                "fedimint-gw-api-rate-limit": 0,  # the bench is one client making hundreds of requests
            }

        self.nodes = [self._node(opts) for opts in ({}, gw(), {}, {}, {}, gw())]
        l1, l2, l3, l4, l5, l6 = self.nodes
        self.factory.join_nodes([l1, l2, l3], wait_for_announce=True)
        self.factory.join_nodes([l1, l4, l5], wait_for_announce=True)
        self.factory.join_nodes([l2, l6], wait_for_announce=True)
        for node in self.nodes:  # every node sees every channel before anyone routes
            node.wait_channel_active(l2.get_channel_scid(l3))
            node.wait_channel_active(l4.get_channel_scid(l5))
            node.wait_channel_active(l2.get_channel_scid(l6))
        self.api_url = str(l2.rpc.call("fedimint-info")["api_url"])
        self.peer_api_url = str(l6.rpc.call("fedimint-info")["api_url"])

    def _node(self, options: dict[str, Any]) -> Any:
        """A started node whose log goes only to its file (pyln-testing also sends it to our
        stdout, which would bury the table)."""
        node = self.factory.get_node(options=options, start=False)
        opts = node.daemon.opts
        files = opts["log-file"] if isinstance(opts["log-file"], list) else [opts["log-file"]]
        opts["log-file"] = [f for f in files if f != "-"] or files
        node.start()
        return node

    def start_federations(self) -> None:
        """Gateway A's four devfed processes following bitcoind; A vetted by the v2 ones."""
        for i, api in enumerate(FEDERATION_APIS):
            self.feds.append(self._federation(f"devfed-{i}", f"bench{i}-v{api}", api, self.api_url))

    def start_peer_federations(self) -> None:
        """Gateway B's devfed processes (scenario 5); B vetted by its v2 one."""
        for i, api in enumerate(PEER_FEDERATION_APIS):
            self.peer_feds.append(
                self._federation(f"devfed-b{i}", f"benchB{i}-v{api}", api, self.peer_api_url)
            )

    def start_fedimint_federation(self) -> DevfedProcess:
        """Scenario 7: a devfed speaking Fedimint's protocol (mint + LNv1), for the official client."""
        fed = start_fedimint_devfed(self.tmp / "devfed-fm", "bench-fedimint")
        self.fedimint_feds.append(fed)
        return fed

    def _federation(self, directory: str, name: str, api: str, gateway_url: str) -> DevfedProcess:
        import json
        import urllib.request

        rpc = f"http://rpcuser:rpcpass@127.0.0.1:{self.bitcoind.rpcport}"
        fed = start_devfed(self.tmp / directory, name, api, rpc)
        if api == "2":
            req = urllib.request.Request(
                f"{fed.admin_url}/admin/gateways",
                data=json.dumps({"url": gateway_url}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            urllib.request.urlopen(req, timeout=10).read()
        return fed

    def plugin_pid(self) -> int | None:
        """The gateway plugin's process (a child of l2's lightningd)."""
        parent = str(self.gateway.daemon.proc.pid)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = stat.rsplit(")", 1)[1].split()[1]
            if ppid == parent and b"fedimint_gateway.py" in cmdline:
                return int(entry.name)
        return None

    def close(self) -> None:
        """Stop the federations, the nodes and bitcoind (only what this object started)."""
        for fed in self.feds + self.peer_feds + self.fedimint_feds:
            fed.stop()
        if self.factory is not None:
            self.factory.killall([False] * len(self.factory.nodes))
        if self.bitcoind is not None:
            try:
                self.bitcoind.stop()
            except Exception:
                self.bitcoind.proc.kill()
            self.bitcoind.proc.wait()
        self.executor.shutdown(wait=False)


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out
