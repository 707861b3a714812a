"""The network's directory layout and its state file, ``network.json``.

``network.json`` is rewritten after every step of ``start`` (so a failed start can still be torn
down) and is what ``stop``, ``status``, ``demo`` and the env file read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contrib.regtest.procs import Daemon

STATE_FILE = "network.json"
DEMO_FILE = "demo.json"
ENV_FILE = "env"
RPC_USER = "regtest"
RPC_PASSWORD = "regtest"
NODE_NAMES = ("payer", "a", "b")
GATEWAYS = ("a", "b")


def repo_root() -> Path:
    """The fedimint-gw checkout this launcher belongs to."""
    return Path(__file__).resolve().parents[2]


def default_dir() -> Path:
    """``<repo>/.regtest`` (git-ignored)."""
    return repo_root() / ".regtest"


@dataclass(frozen=True)
class FederationSpec:
    """One of the three demo federations: short key, devfed name, API majors, its gateway."""

    key: str
    name: str
    api: str
    gateway: str
    label: str


FEDERATIONS = (
    FederationSpec("v1", "regtest-v1", "1", "a", "federation v1"),
    FederationSpec("v12", "regtest-v1v2", "1,2", "a", "federation v1+v2"),
    FederationSpec("v2", "regtest-v2", "2", "b", "federation v2"),
)


@dataclass
class NetworkState:
    """Everything known about a started (or starting) network."""

    base: Path
    python: str
    status: str = "starting"
    daemons: list[Daemon] = field(default_factory=list)
    bitcoind: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    federations: dict[str, dict[str, Any]] = field(default_factory=dict)
    wallets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """``<base>/network.json``."""
        return self.base / STATE_FILE

    def bitcoind_url(self) -> str:
        """``http://user:pass@127.0.0.1:PORT`` (devfed's ``--bitcoind-rpc``)."""
        return f"http://{RPC_USER}:{RPC_PASSWORD}@127.0.0.1:{self.bitcoind['rpcport']}"

    def lightning_dir(self, node: str) -> Path:
        """The ``--lightning-dir`` of node ``node`` (payer, a, b)."""
        return self.base / f"lightning-{node}"

    def rpc_file(self, node: str) -> Path:
        """The JSON-RPC socket of node ``node``."""
        return self.lightning_dir(node) / "regtest" / "lightning-rpc"

    def add(self, daemon: Daemon) -> None:
        """Record a started daemon and save at once."""
        self.daemons.append(daemon)
        self.save()

    def save(self) -> None:
        """Write ``network.json`` atomically."""
        data = {
            "status": self.status,
            "base": str(self.base),
            "python": self.python,
            "daemons": [d.to_dict() for d in self.daemons],
            "bitcoind": self.bitcoind,
            "nodes": self.nodes,
            "federations": self.federations,
            "wallets": self.wallets,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, base: Path) -> NetworkState | None:
        """The state in ``base``, or ``None`` when there is no network there."""
        path = base / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(
            base=Path(data["base"]),
            python=str(data["python"]),
            status=str(data["status"]),
            daemons=[Daemon.from_dict(d) for d in data["daemons"]],
            bitcoind=dict(data["bitcoind"]),
            nodes=dict(data["nodes"]),
            federations=dict(data["federations"]),
            wallets=dict(data["wallets"]),
        )
