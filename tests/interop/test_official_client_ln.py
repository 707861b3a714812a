"""The official client's LNv1 module against a fake guardian: config and the gateway list."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.interop.fake_guardian import (
    LN_INSTANCE,
    FakeFederation,
    RpcFailure,
    ln_module,
    module_api_versions,
)
from tests.interop.official_client import OfficialClient, OfficialClientError

KEY = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
ANNOUNCEMENT = {
    "info": {
        "mint_channel_id": 12345,
        "gateway_redeem_key": KEY,
        "node_pub_key": KEY,
        "lightning_alias": "fedimint-gw",
        "api": "http://127.0.0.1:9/",
        "route_hints": [],
        "fees": {"base_msat": 1000, "proportional_millionths": 100},
        "gateway_id": KEY,
        "supports_private_payments": False,
    },
    "vetted": False,
    "ttl": {"secs": 600, "nanos": 0},
}


async def test_update_gateway_cache_reads_our_announcements(official_client: OfficialClient) -> None:
    fed = FakeFederation(
        peers=1,
        modules={LN_INSTANCE: ln_module()},
        module_versions={LN_INSTANCE: module_api_versions()},
        handlers={"module_0_list_gateways": lambda _peer, _params: [ANNOUNCEMENT]},
    )
    await fed.start()
    try:
        await official_client.join("probe", fed.invite_code())
        assert await official_client.rpc_one("ln", "list_gateways") == []  # a local cache, empty at first
        await official_client.rpc("ln", "update_gateway_cache")

        assert [(c.method, c.params) for c in fed.calls_to("module_0_list_gateways")] == [
            ("module_0_list_gateways", [{"auth": None, "params": None}])
        ]
        [cached] = await official_client.rpc_one("ln", "list_gateways")
        assert cached["info"] == ANNOUNCEMENT["info"]
        assert cached["vetted"] is False
        assert 0 < cached["ttl"]["secs"] <= 600  # counted down from when it was read
        gateway = await official_client.rpc_one(
            "ln", "get_gateway", {"gateway_id": None, "force_internal": False}
        )
        assert gateway == ANNOUNCEMENT["info"]
    finally:
        await fed.stop()


async def test_a_guardian_error_reaches_the_caller_with_its_message(official_client: OfficialClient) -> None:
    def refuse(_peer: int, _params: Any) -> Any:
        raise RpcFailure("no gateways today")

    fed = FakeFederation(
        peers=1,
        modules={LN_INSTANCE: ln_module()},
        module_versions={LN_INSTANCE: module_api_versions()},
        handlers={"module_0_list_gateways": refuse},
    )
    await fed.start()
    try:
        await official_client.join("probe", fed.invite_code())
        expected = "list_gateways, 0 => Unspecified server error: no gateways today"
        with pytest.raises(OfficialClientError, match=re.escape(expected)):
            await official_client.rpc("ln", "update_gateway_cache")
    finally:
        await fed.stop()
