"""The public HTTP API against hostile requests (issue 15, findings 1, 4, 8 and 9): every
one gets a typed 4xx, changes nothing, and public answers keep the gateway's details."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import aiohttp
from coincurve import PrivateKey

from fedimint_gw.http.app import HttpServer, create_app
from fedimint_gw.http.limits import HttpLimits
from fedimint_gw.lightning import bolt11
from tests.e2e.conftest import Env, wait_until
from tests.e2e.test_registrations import _body, _rows, _v2

POST_ROUTES = (
    "/v1/pay_invoice",
    "/v1/send_payment",
    "/v1/routing_info",
    "/v1/create_bolt11_invoice",
    "/v1/peer/hello",
    "/v1/peer/forward",
)
JSON = {"Content-Type": "application/json"}


async def _post(env: Env, path: str, raw: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with env.session.post(f"{env.api_url}{path}", data=raw, headers=headers or JSON) as r:
        return r.status, await r.json(content_type=None)


async def test_deep_json_on_every_post_route_is_a_typed_400(env: Env) -> None:
    await _v2(env, "deep")
    rows = await _rows(env)
    for depth in (100, 5_000):
        raw = ("[" * depth + "]" * depth).encode()
        nested = ('{"federation_id": ' + "[" * depth + "]" * depth + "}").encode()
        for path in POST_ROUTES:
            for body in (raw, nested):
                status, answer = await _post(env, path, body)
                assert (status, answer["error"]["code"]) == (400, 2101), (path, depth, answer)
    assert await _rows(env) == rows
    assert not [m for lvl, m in env.logs if lvl == "error"]


async def test_hostile_values_are_typed_4xx(env: Env) -> None:
    fid, user = await _v2(env, "values")
    rows = await _rows(env)
    body = await _body(env, user, secrets.token_bytes(32))
    key = PrivateKey()
    huge = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=2**63,
        timestamp=int(time.time()),
        payment_hash=secrets.token_bytes(32),
        payment_secret=secrets.token_bytes(32),
        description="huge",
        features=bolt11.DEFAULT_FEATURES,
    )
    huge_invoice = bolt11.sign_with_key(bolt11.encode_unsigned(huge), key)
    cases: list[tuple[str, bytes]] = [
        ("/v1/routing_info", b'{"federation_id": "\\ud800' + b"a" * 63 + b'"}'),
        ("/v1/create_bolt11_invoice", json.dumps({**body, "description": "\u00e9" * 639}).encode()),
        ("/v1/create_bolt11_invoice", json.dumps({**body, "description": chr(0xDC00)}).encode()),
        ("/v1/create_bolt11_invoice", json.dumps({**body, "amount_msat": 2**63}).encode()),
        ("/v1/create_bolt11_invoice", json.dumps({**body, "amount_msat": 2**64}).encode()),
        ("/v1/create_bolt11_invoice", json.dumps({**body, "amount_msat": float("nan")}).encode()),
        (
            "/v1/pay_invoice",
            json.dumps({"federation_id": fid, "contract_id": "ab" * 32, "invoice": huge_invoice}).encode(),
        ),
        ("/v1/peer/hello", json.dumps({"node_id": "02" + "11" * 32, "credit_limit_msat": 2**64}).encode()),
    ]
    for path, raw in cases:
        status, answer = await _post(env, path, raw)
        assert 400 <= status < 500 and answer["error"]["code"] == 2101, (path, raw[:80], status, answer)
    assert await _rows(env) == rows
    assert not [m for lvl, m in env.logs if lvl == "error"]


async def test_posts_must_be_json(env: Env) -> None:
    _, user = await _v2(env, "ctype")
    raw = json.dumps(await _body(env, user, secrets.token_bytes(32))).encode()
    for headers in (
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {},
    ):
        for path in ("/v1/create_bolt11_invoice", "/v1/routing_info", "/v1/pay_invoice"):
            status, answer = await _post(env, path, raw, headers or {"Content-Type": ""})
            assert (status, answer["error"]["code"]) == (415, 2161), (path, headers, answer)
    assert await _rows(env) == 0


async def test_public_errors_and_info_keep_the_gateways_details(env: Env) -> None:
    fid, user = await _v2(env, "quiet")
    body = await _body(env, user, secrets.token_bytes(32))
    fed = env.federations[0]
    guardian_urls = [g.url for g in user.config.guardians]
    await fed.stop()
    status, answer = await _post(env, "/v1/create_bolt11_invoice", json.dumps(body).encode())
    assert status == 502 and answer["error"]["name"] == "FederationUnreachable"
    text = json.dumps(answer)
    assert "127.0.0.1" not in text and "http" not in text and not any(u in text for u in guardian_urls)
    async with env.session.get(f"{env.api_url}/v1/info") as r:
        info = await r.json()
    assert "federations" not in info and fid not in json.dumps(info)
    assert info["lightning_pubkey"] == env.node.node_id


async def test_a_flood_from_one_client_is_rate_limited_and_stores_little(env: Env) -> None:
    await _v2(env, "flood")
    _, user = await _v2(env, "flood2")
    bodies = [json.dumps(await _body(env, user, secrets.token_bytes(32))).encode() for _ in range(30)]
    limits = HttpLimits(rate_per_second=0.001, burst=10)  # no refill to speak of during the test
    server = HttpServer(create_app(env.gateway.public, env.log, limits), "127.0.0.1", 0)
    await server.start()
    url = f"http://127.0.0.1:{server.port}"
    statuses: list[int] = []
    try:
        for i in range(2_000):
            async with env.session.post(
                f"{url}/v1/create_bolt11_invoice", data=bodies[i % len(bodies)], headers=JSON
            ) as r:
                statuses.append(r.status)
        async with env.session.get(f"{url}/v1/id") as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
    finally:
        await server.stop()
    assert statuses.count(200) == 10 and statuses.count(429) == 1_990
    assert await _rows(env) == 10  # storage grows with the burst, not with the flood


async def test_idle_connections_are_closed_and_capped(env: Env) -> None:
    limits = HttpLimits(max_connections=8, idle_timeout=0.5)
    server = HttpServer(create_app(env.gateway.public, env.log, limits), "127.0.0.1", 0)
    await server.start()
    streams = []
    try:
        for _ in range(20):  # more idle sockets than the cap: the oldest idle ones make room
            streams.append(await asyncio.open_connection("127.0.0.1", server.port))
        async with (
            aiohttp.ClientSession() as wallet,
            wallet.get(f"http://127.0.0.1:{server.port}/v1/id") as r,
        ):
            assert r.status == 200
        # Every idle socket is closed by the server (EOF), none left open for an hour.
        for reader, _ in streams:
            await asyncio.wait_for(reader.read(), timeout=10)

        async def all_closed() -> bool:
            return all(reader.at_eof() for reader, _ in streams)

        await wait_until(all_closed)
    finally:
        for _, writer in streams:
            writer.close()
        await server.stop()
