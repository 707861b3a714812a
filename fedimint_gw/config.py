"""The gateway's configuration: one frozen object built once at `init` from plugin options.

Every option is a `fedimint-gw-*` line in lightningd's config (or a `--fedimint-gw-*`
command-line flag). `OPTIONS` is the single list the plugin registers, so names, defaults
and help texts live in one place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from fedimint_gw.domain.amount import FeeSchedule
from fedimint_gw.errors import InvalidInput

DB_FILENAME = "fedimint-gw.sqlite3"


@dataclass(frozen=True)
class OptionSpec:
    """One plugin option: its name, default (as lightningd sees it), type and help."""

    name: str
    default: str | int
    opt_type: str
    description: str


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "fedimint-gw-db",
        "",
        "string",
        f"Path of the gateway's SQLite database. Empty (default): {DB_FILENAME} in the "
        "lightning directory of the current network.",
    ),
    OptionSpec(
        "fedimint-gw-api-bind",
        "127.0.0.1:8175",
        "string",
        "HOST:PORT the public gateway HTTP API listens on (users' wallets and peer gateways), "
        "or 'off' to run without it.",
    ),
    OptionSpec(
        "fedimint-gw-api-url",
        "",
        "string",
        "Public URL of the gateway API as advertised to federations and wallets. "
        "Empty (default): http://HOST:PORT of fedimint-gw-api-bind.",
    ),
    OptionSpec(
        "fedimint-gw-fee-base-msat",
        2000,
        "int",
        "Default base fee in msat charged per payment, for federations joined without their own fees.",
    ),
    OptionSpec(
        "fedimint-gw-fee-ppm",
        3000,
        "int",
        "Default proportional fee in parts per million, for federations joined without their own fees.",
    ),
    OptionSpec(
        "fedimint-gw-cltv-margin",
        12,
        "int",
        "Blocks of safety the gateway keeps between an HTLC's expiry and the contract it funds "
        "or pays; incoming HTLCs closer to expiry than this are failed, and a held HTLC not "
        "funded by expiry minus this margin is failed then.",
    ),
    OptionSpec(
        "fedimint-gw-request-timeout",
        30,
        "int",
        "Seconds to wait for a federation or peer gateway request before treating it as failed to answer.",
    ),
)


@dataclass(frozen=True)
class ApiBind:
    """Where the HTTP API listens."""

    host: str
    port: int


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway reads from its options and from lightningd's `init`."""

    lightning_dir: str
    rpc_file: str
    network: str
    db_path: str
    api_bind: ApiBind | None
    api_url: str | None
    default_fees: FeeSchedule
    cltv_margin: int
    request_timeout: float

    @property
    def rpc_path(self) -> str:
        """Absolute path of lightningd's JSON-RPC socket."""
        return os.path.join(self.lightning_dir, self.rpc_file)


def parse_bind(raw: str) -> ApiBind | None:
    """Parse 'HOST:PORT' (or 'off'); raise InvalidInput otherwise."""
    text = raw.strip()
    if text.lower() in ("off", "none", ""):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(f"fedimint-gw-api-bind must be HOST:PORT or 'off', got {raw!r}")
    return ApiBind(host.strip("[]"), int(port))


def build_config(options: Mapping[str, object], init: Mapping[str, object]) -> GatewayConfig:
    """Validate the plugin options and lightningd's init configuration into a GatewayConfig."""

    def opt(name: str) -> object:
        value = options.get(name)
        if value is None:
            for spec in OPTIONS:
                if spec.name == name:
                    return spec.default
            raise KeyError(name)
        return value

    def int_opt(name: str, low: int, high: int) -> int:
        raw = opt(name)
        try:
            value = int(str(raw))
        except ValueError:
            raise InvalidInput(f"{name} must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise InvalidInput(f"{name} must be between {low} and {high}, got {value}")
        return value

    lightning_dir = str(init.get("lightning-dir", "."))
    db_path = str(opt("fedimint-gw-db")).strip() or os.path.join(lightning_dir, DB_FILENAME)
    bind = parse_bind(str(opt("fedimint-gw-api-bind")))
    url = str(opt("fedimint-gw-api-url")).strip()
    if not url and bind is not None:
        url = f"http://{bind.host}:{bind.port}"
    return GatewayConfig(
        lightning_dir=lightning_dir,
        rpc_file=str(init.get("rpc-file", "lightning-rpc")),
        network=str(init.get("network", "regtest")),
        db_path=db_path,
        api_bind=bind,
        api_url=url or None,
        default_fees=FeeSchedule(
            int_opt("fedimint-gw-fee-base-msat", 0, 1_000_000_000),
            int_opt("fedimint-gw-fee-ppm", 0, 1_000_000),
        ),
        cltv_margin=int_opt("fedimint-gw-cltv-margin", 1, 2016),
        request_timeout=float(int_opt("fedimint-gw-request-timeout", 1, 3600)),
    )
