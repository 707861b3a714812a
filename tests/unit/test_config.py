from __future__ import annotations

import pytest

from fedimint_gw.config import OPTIONS, ApiBind, build_config, parse_bind
from fedimint_gw.errors import InvalidInput

INIT = {"lightning-dir": "/ln/regtest", "rpc-file": "lightning-rpc", "network": "regtest"}


def test_defaults_put_the_database_in_the_lightning_dir() -> None:
    cfg = build_config({}, INIT)
    assert cfg.db_path == "/ln/regtest/fedimint-gw.sqlite3"
    assert cfg.rpc_path == "/ln/regtest/lightning-rpc"
    assert cfg.api_bind == ApiBind("127.0.0.1", 8175)
    assert cfg.api_url == "http://127.0.0.1:8175"
    assert cfg.default_fees.base_msat == 2000 and cfg.default_fees.ppm == 3000


def test_options_override() -> None:
    cfg = build_config(
        {"fedimint-gw-db": "/data/gw.db", "fedimint-gw-api-bind": "off", "fedimint-gw-fee-ppm": 0}, INIT
    )
    assert cfg.db_path == "/data/gw.db"
    assert cfg.api_bind is None and cfg.api_url is None
    assert cfg.default_fees.ppm == 0


@pytest.mark.parametrize(
    "opts",
    [
        {"fedimint-gw-api-bind": "nonsense"},
        {"fedimint-gw-api-bind": "127.0.0.1:99999"},
        {"fedimint-gw-fee-ppm": 2_000_000},
        {"fedimint-gw-cltv-margin": 0},
        {"fedimint-gw-fee-base-msat": "x"},
        {"fedimint-gw-fee-ppm": "१२३"},  # other scripts' digits are not numbers here (issue 15)
        {"fedimint-gw-cltv-margin": " 12"},
        {"fedimint-gw-api-rate-limit": -1},
        {"fedimint-gw-api-burst": 0},
        {"fedimint-gw-api-bind": "127.0.0.1:८१७५"},
        {"fedimint-gw-api-url": "http://[::1"},
        {"fedimint-gw-api-url": "gateway.example:8175"},
    ],
)
def test_bad_options_are_refused_clearly(opts: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as info:
        build_config(opts, INIT)
    assert "fedimint-gw-" in info.value.message


def test_every_option_is_prefixed_and_documented() -> None:
    names = [o.name for o in OPTIONS]
    assert len(names) == len(set(names))
    for o in OPTIONS:
        assert o.name.startswith("fedimint-gw-") and len(o.description) > 20


def test_parse_bind_ipv6() -> None:
    assert parse_bind("[::1]:9000") == ApiBind("::1", 9000)


def test_an_ipv6_bind_gives_a_valid_default_url() -> None:
    cfg = build_config({"fedimint-gw-api-bind": "[::1]:8175"}, INIT)
    assert cfg.api_bind == ApiBind("::1", 8175) and cfg.api_url == "http://[::1]:8175"


TOKEN = "0123456789abcdef0123"


def test_dashboard_is_off_by_default() -> None:
    cfg = build_config({}, INIT)
    assert cfg.dashboard_bind is None and cfg.dashboard_token is None


@pytest.mark.parametrize(
    ("bind", "token", "expected"),
    [
        ("127.0.0.1:8176", "", ApiBind("127.0.0.1", 8176)),
        ("localhost:8176", "", ApiBind("localhost", 8176)),
        ("[::1]:8176", "", ApiBind("::1", 8176)),
        ("0.0.0.0:8176", TOKEN, ApiBind("0.0.0.0", 8176)),
        ("192.0.2.7:8176", TOKEN, ApiBind("192.0.2.7", 8176)),
    ],
)
def test_dashboard_binds(bind: str, token: str, expected: ApiBind) -> None:
    cfg = build_config({"fedimint-gw-dashboard-bind": bind, "fedimint-gw-dashboard-token": token}, INIT)
    assert cfg.dashboard_bind == expected
    assert cfg.dashboard_token == (token or None)


@pytest.mark.parametrize(
    ("bind", "token", "match"),
    [
        ("0.0.0.0:8176", "", "not a loopback address"),
        ("192.0.2.7:8176", "", "not a loopback address"),
        ("gateway.example.com:8176", "", "not a loopback address"),
        ("127.0.0.1:8176", "short", "at least 16"),
        ("127.0.0.1:8176", "has a space in it, long", "without spaces"),
        ("nonsense", "", "fedimint-gw-dashboard-bind must be HOST:PORT"),
    ],
)
def test_dashboard_refuses_an_open_bind_without_a_token(bind: str, token: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        build_config({"fedimint-gw-dashboard-bind": bind, "fedimint-gw-dashboard-token": token}, INIT)
