"""The gateway's configuration: one frozen object built once at `init` from plugin options.

Every option is a `fedimint-gw-*` line in lightningd's config (or a `--fedimint-gw-*`
command-line flag). `OPTIONS` is the single list the plugin registers, so names, defaults
and help texts live in one place.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from fedimint_gw.domain import parse
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
        "fedimint-gw-metrics-bind",
        "off",
        "string",
        "HOST:PORT of the operator's listener: Prometheus /metrics and /health. 'off' (default) "
        "runs without it; keep it on loopback or a monitoring network (it is not authenticated). "
        "Port 9750 is what CLN's prometheus plugin uses: pick another, e.g. 127.0.0.1:9751.",
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
        "fedimint-gw-api-rate-limit",
        10,
        "int",
        "Requests per second each client address may make to the public API, sustained (peer "
        "gateways' signed requests are not counted); more are answered 429. 0 turns the limit off.",
    ),
    OptionSpec(
        "fedimint-gw-api-burst",
        50,
        "int",
        "Requests each client address may make to the public API at once, after a quiet period.",
    ),
    OptionSpec(
        "fedimint-gw-request-timeout",
        30,
        "int",
        "Seconds to wait for a federation or peer gateway request before treating it as failed to answer.",
    ),
    OptionSpec(
        "fedimint-gw-dashboard-bind",
        "off",
        "string",
        "HOST:PORT of the read-only web dashboard, or 'off' (default). Without "
        "fedimint-gw-dashboard-token it may only listen on a loopback address (127.0.0.1, ::1).",
    ),
    OptionSpec(
        "fedimint-gw-dashboard-token",
        "",
        "string",
        "Access token the dashboard asks for (Authorization: Bearer TOKEN, or ?token=TOKEN), at "
        "least 16 characters; needed to bind the dashboard to a non-loopback address. Empty: none.",
    ),
)

MIN_TOKEN_LENGTH = 16


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
    api_rate_limit: int = 10  # requests per second per client address; 0: no limit
    api_burst: int = 50
    metrics_bind: ApiBind | None = None
    dashboard_bind: ApiBind | None = None
    dashboard_token: str | None = None

    @property
    def rpc_path(self) -> str:
        """Absolute path of lightningd's JSON-RPC socket."""
        return os.path.join(self.lightning_dir, self.rpc_file)


def parse_bind(raw: str, option: str = "fedimint-gw-api-bind") -> ApiBind | None:
    """Parse 'HOST:PORT' (or 'off'); raise InvalidInput otherwise."""
    text = raw.strip()
    if text.lower() in ("off", "none", ""):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not host or not re.fullmatch(r"[0-9]{1,5}", port, re.ASCII) or not 0 <= int(port) <= 65535:
        raise InvalidInput(f"{option} must be HOST:PORT or 'off', got {raw!r}")
    return ApiBind(host.strip("[]"), int(port))


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback addresses; any other name or address is not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_dashboard(bind_raw: str, token_raw: str) -> tuple[ApiBind | None, str | None]:
    """The dashboard's listener and token: off by default, loopback only unless a token is set."""
    bind = parse_bind(bind_raw, "fedimint-gw-dashboard-bind")
    token = token_raw.strip() or None
    if token is not None and (len(token) < MIN_TOKEN_LENGTH or not token.isprintable() or " " in token):
        raise InvalidInput(
            f"fedimint-gw-dashboard-token must be at least {MIN_TOKEN_LENGTH} printable characters "
            "without spaces (for example: openssl rand -hex 24)"
        )
    if bind is not None and token is None and not is_loopback(bind.host):
        raise InvalidInput(
            f"fedimint-gw-dashboard-bind {bind.host}:{bind.port} is not a loopback address: set "
            "fedimint-gw-dashboard-token too, or bind to 127.0.0.1"
        )
    return bind, token


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
        return parse.integer(opt(name), name, low, high)  # ASCII digits only

    lightning_dir = str(init.get("lightning-dir", "."))
    db_path = str(opt("fedimint-gw-db")).strip() or os.path.join(lightning_dir, DB_FILENAME)
    bind = parse_bind(str(opt("fedimint-gw-api-bind")))
    dashboard_bind, dashboard_token = parse_dashboard(
        str(opt("fedimint-gw-dashboard-bind")), str(opt("fedimint-gw-dashboard-token"))
    )
    url = str(opt("fedimint-gw-api-url")).strip()
    if url:
        parse.url(url, "fedimint-gw-api-url")
    if not url and bind is not None:
        host = f"[{bind.host}]" if ":" in bind.host else bind.host  # an IPv6 address needs brackets
        url = f"http://{host}:{bind.port}"
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
        api_rate_limit=int_opt("fedimint-gw-api-rate-limit", 0, 100_000),
        api_burst=int_opt("fedimint-gw-api-burst", 1, 100_000),
        metrics_bind=parse_bind(str(opt("fedimint-gw-metrics-bind")), "fedimint-gw-metrics-bind"),
        dashboard_bind=dashboard_bind,
        dashboard_token=dashboard_token,
    )
