"""Fedimint client config: parsing, federation id, module configs, the mint client config."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.fedimint.config import (
    ClientConfig,
    ConsensusVersion,
    ModuleConfig,
    PeerUrl,
    federation_id_of,
    parse_client_config,
    threshold,
)
from fedimint_gw.fedimint.errors import ConfigMismatch, DecodeError
from fedimint_gw.fedimint.mint_types import FeeConsensus, MintClientConfig


def _mint_config(n: int = 4) -> MintClientConfig:
    tiers = {1 << i: bytes([i]) * 96 for i in range(3)}
    peers = {p: {a: bytes([p + 10]) * 96 for a in tiers} for p in range(n)}
    return MintClientConfig(tiers, FeeConsensus(0, 0), peers, 500)


def _config_json() -> dict[str, object]:
    mint = _mint_config()
    return {
        "api_endpoints": {str(i): {"url": f"ws://127.0.0.1:{18000 + i}/", "name": f"g{i}"} for i in range(4)},
        "broadcast_public_keys": {str(i): "02" + "11" * 32 for i in range(4)},
        "consensus_version": {"major": 2, "minor": 0},
        "meta": {"federation_name": "test fed"},
        "modules": {
            "0": {"kind": "ln", "version": {"major": 2, "minor": 0}, "config": "0003aabbcc"},
            "1": {
                "kind": "mint",
                "version": {"major": 2, "minor": 0},
                "config": ModuleConfig(1, "mint", ConsensusVersion(2, 0), mint.to_bytes()).config_hex,
            },
        },
        "some_future_field": 1,
    }


@pytest.mark.parametrize("n,t", [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (7, 5), (10, 7), (13, 9)])
def test_threshold(n: int, t: int) -> None:
    assert threshold(n) == t


def test_federation_id_is_sha256_of_the_encoded_endpoint_map() -> None:
    """Layout check by hand: count, then per peer: PeerId varint, url string, name string."""
    endpoints = {1: PeerUrl("ws://b/", "bob"), 0: PeerUrl("ws://a/", "al")}
    expected = (
        bytes([2])
        + bytes([0, 7]) + b"ws://a/" + bytes([2]) + b"al"
        + bytes([1, 7]) + b"ws://b/" + bytes([3]) + b"bob"
    )  # fmt: skip
    assert federation_id_of(endpoints) == FederationId(hashlib.sha256(expected).hexdigest())


def test_parse_config() -> None:
    config = parse_client_config(_config_json())
    assert config.num_peers == 4 and config.threshold == 3
    assert config.api_endpoints[2] == PeerUrl("ws://127.0.0.1:18002/", "g2")
    assert config.consensus_version == ConsensusVersion(2, 0)
    assert config.federation_name == "test fed"
    assert config.broadcast_public_keys is not None and len(config.broadcast_public_keys[3]) == 33
    assert config.modules[0] == ModuleConfig(0, "ln", ConsensusVersion(2, 0), bytes.fromhex("aabbcc"))
    mint = config.module_by_kind("mint")
    assert mint is not None and mint.instance_id == 1
    assert MintClientConfig.from_bytes(mint.raw) == _mint_config()
    assert config.module_by_kind("wallet") is None


def test_config_json_round_trip_and_id_stability() -> None:
    config = parse_client_config(_config_json())
    again = parse_client_config(json.loads(json.dumps(config.to_json())))
    assert again == config
    assert again.federation_id() == config.federation_id()
    assert again.consensus_hash() == config.consensus_hash()
    config.check_federation_id(config.federation_id())
    with pytest.raises(ConfigMismatch):
        config.check_federation_id(FederationId("00" * 32))


def test_federation_id_depends_only_on_endpoints() -> None:
    data = _config_json()
    base = parse_client_config(data).federation_id()
    data["meta"] = {"federation_name": "renamed"}
    data["broadcast_public_keys"] = None
    assert parse_client_config(data).federation_id() == base
    endpoints = data["api_endpoints"]
    assert isinstance(endpoints, dict)
    endpoints["0"] = {"url": "ws://127.0.0.1:18000/", "name": "other name"}
    assert parse_client_config(data).federation_id() != base


def test_urls_are_hashed_in_safeurl_form() -> None:
    data = _config_json()
    endpoints = data["api_endpoints"]
    assert isinstance(endpoints, dict)
    base = parse_client_config(data).federation_id()
    endpoints["0"] = {"url": "WS://127.0.0.1:18000", "name": "g0"}
    assert parse_client_config(data).federation_id() == base


def test_broadcast_keys_are_optional() -> None:
    data = _config_json()
    del data["broadcast_public_keys"]
    assert parse_client_config(data).broadcast_public_keys is None


@pytest.mark.parametrize(
    "path,value,why",
    [
        (("api_endpoints",), {}, "at least one"),
        (("api_endpoints",), {"x": {"url": "ws://a/", "name": "a"}}, "not a number"),
        (("api_endpoints",), {"+1": {"url": "ws://a/", "name": "a"}}, "not a number"),
        (("api_endpoints",), {"70000": {"url": "ws://a/", "name": "a"}}, "out of range"),
        (("api_endpoints",), {"0": {"url": "ws://a/"}}, "missing 'name'"),
        (("api_endpoints",), {"0": {"url": "not a url", "name": "a"}}, "URL"),
        (("consensus_version",), {"major": True, "minor": 0}, "integer"),
        (("consensus_version",), {"major": -1, "minor": 0}, "integer"),
        (("broadcast_public_keys",), {"0": "02"}, "33 bytes"),
        (("meta",), {"a": 1}, "string"),
        (("modules", "0", "config"), "zz", "hex"),
        (("modules", "0", "config"), "0103aabbcc", "instance 1"),
        (("modules", "0", "config"), "0005aabbcc", "exceeds"),
        (("modules", "0", "config"), "0003aabbccdd", "trailing"),
        (("modules", "0", "version"), {"major": 2}, "minor"),
    ],
)
def test_refusals(path: tuple[str, ...], value: object, why: str) -> None:
    data = _config_json()
    target: dict[str, object] = data
    for key in path[:-1]:
        nxt = target[key]
        assert isinstance(nxt, dict)
        target = nxt
    target[path[-1]] = value
    with pytest.raises(DecodeError, match=why):
        parse_client_config(data)


def test_not_an_object() -> None:
    with pytest.raises(DecodeError):
        parse_client_config([1, 2])


def test_mint_client_config_layout() -> None:
    """Fields in upstream order: tbs_pks, fee_consensus{base, ppm}, peer_tbs_pks, max notes."""
    cfg = MintClientConfig({1: b"\x01" * 96}, FeeConsensus(100, 1000), {0: {1: b"\x02" * 96}}, 300)
    expected = (
        bytes([1, 1]) + b"\x01" * 96
        + bytes([100]) + bytes.fromhex("fd03e8")
        + bytes([1, 0, 1, 1]) + b"\x02" * 96
        + bytes.fromhex("fd012c")
    )  # fmt: skip
    assert cfg.to_bytes() == expected
    assert MintClientConfig.from_bytes(expected) == cfg


def test_mint_client_config_refuses_unsorted_tiers() -> None:
    data = bytes([2, 2]) + b"\x01" * 96 + bytes([1]) + b"\x01" * 96 + bytes([0, 0, 0, 0])
    with pytest.raises(DecodeError, match="non-canonical"):
        MintClientConfig.from_bytes(data)


@pytest.mark.parametrize(
    "amount,fee",
    [
        # modules/fedimint-mint-common/src/config.rs test_fee_consensus, FeeConsensus::new(1000)
        (999, 100),
        (1_000, 101),
        (1_000_000, 1_100),
        (100_000_000_000, 100_000_100),
        (10_000_000_000_000_000, 10_000_000_000_100),
    ],
)
def test_upstream_fee_vectors(amount: int, fee: int) -> None:
    assert FeeConsensus.new(1_000).fee(amount) == fee


def test_fee_consensus_new_bounds() -> None:
    assert FeeConsensus.new(0) == FeeConsensus(100, 0)
    with pytest.raises(ValueError):
        FeeConsensus.new(1_001)


@given(
    st.dictionaries(
        st.integers(0, 20),
        st.tuples(
            st.from_regex(r"wss?://[a-z]{1,10}(:[1-9][0-9]{3})?/", fullmatch=True), st.text(max_size=10)
        ),
        min_size=1,
        max_size=6,
    )
)
def test_config_round_trip(endpoints: dict[int, tuple[str, str]]) -> None:
    config = ClientConfig(
        {k: PeerUrl(u, n) for k, (u, n) in sorted(endpoints.items())}, ConsensusVersion(2, 1)
    )
    again = parse_client_config(json.loads(json.dumps(config.to_json())))
    assert again == config and again.federation_id() == config.federation_id()
