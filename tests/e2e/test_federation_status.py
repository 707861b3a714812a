"""The public federation status endpoint: gatewayd's shape, scoped to one federation, no more."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import Env

FORBIDDEN = ("balance", "guardian", "url", "error", "peer", "route_hint", "public_key", "ecash", "scid")


async def _status(env: Env, body: object, path: str = "/v1/federation_status") -> tuple[int, Any]:
    async with env.session.post(
        env.api_url + path, data=json.dumps(body), headers={"Content-Type": "application/json"}
    ) as r:
        return r.status, await r.json()


async def _offline(env: Env, admin_url: str, peers: range) -> None:
    for peer in peers:
        async with env.session.post(
            f"{admin_url}/admin/guardians/{peer}/fault", json={"mode": "offline"}
        ) as r:
            r.raise_for_status()


async def test_unserved_and_bad_input(env: Env) -> None:
    status, body = await _status(env, {"federation_id": "AB" * 32})
    assert status == 200 and body == {"federation_id": "ab" * 32, "federation_status": "unserved"}
    for bad in ({"federation_id": "nope"}, {}, ["x"]):
        status, body = await _status(env, bad)
        assert status == 400 and body["error"]["code"] == 2101


async def test_served_v1_and_connectivity(env: Env) -> None:
    fed = await env.federation("st1", (1,))
    await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 10_000)
    status, body = await _status(env, {"federation_id": fed.federation_id}, "/federation_status")
    assert status == 200
    assert body["federation_status"] == "served" and body["connectivity"] == "connected"
    assert body["lnv2"] == {"module_status": "absent"}
    lnv1 = body["lnv1"]
    assert lnv1["module_status"] == "supported" and lnv1["registration"]["mode"] == "gateway_managed"
    http = lnv1["registration"]["endpoints"]["http"]
    assert http["last_attempt"]["result"] == "succeeded" and 0 < http["advertised_ttl_remaining_secs"] <= 600
    text = json.dumps(body)
    assert not [w for w in FORBIDDEN if w in text], text
    assert set(body) == {"federation_id", "federation_status", "connectivity", "lnv1", "lnv2"}

    await _offline(env, fed.admin_url, range(2))
    await env.gateway.ops.watcher.check()
    assert (await _status(env, {"federation_id": fed.federation_id}))[1]["connectivity"] == "degraded"
    await _offline(env, fed.admin_url, range(2, 4))
    await env.gateway.ops.watcher.check()
    assert (await _status(env, {"federation_id": fed.federation_id}))[1]["connectivity"] == "disconnected"


async def test_served_v2_is_federation_managed(env: Env) -> None:
    fed = await env.federation("st2", (2,))
    await env.gateway.federations.connect(fed.invite_code)
    _, body = await _status(env, {"federation_id": fed.federation_id})
    assert body["lnv1"] == {"module_status": "absent"}
    assert body["lnv2"]["module_status"] == "supported"
    assert body["lnv2"]["registration"] == {"mode": "federation_managed"}
