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
from fedimint_gw.peer import wire
from tests.e2e.conftest import Env, wait_until
from tests.e2e.test_registrations import _body, _rows, _v2
from tests.support.fake_node import FakeNode

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


async def _stranger_hello(env: Env) -> tuple[bytes, dict[str, str]]:
    """A correctly signed hello from a node nobody knows (made up on the spot)."""
    stranger, key = FakeNode(), wire.PeerKey(secrets.token_bytes(32))
    body = {
        "node_id": stranger.node_id,
        "peer_key": key.public_hex,
        "binding": await stranger.sign_message(wire.binding_text(key.public_hex, stranger.node_id)),
        "versions": {"min": 1, "max": 1},
    }
    raw = json.dumps(body).encode()
    headers, _ = wire.sign_request(
        key, "/v1/peer/hello", stranger.node_id, env.node.node_id, raw, env.gateway.clock.now()
    )
    return raw, {**headers, **JSON}


async def _counts(env: Env) -> dict[str, int]:
    found = {}
    for table in ("payments", "peers", "peer_nonces"):
        async with env.gateway.db.conn.execute(f"SELECT COUNT(*) FROM {table}") as cur:
            row = await cur.fetchone()
        found[table] = int(row[0]) if row else 0
    return found


async def test_a_flood_of_each_request_is_rate_limited_and_stores_little(env: Env) -> None:
    fid, user = await _v2(env, "flood")
    bodies = [json.dumps(await _body(env, user, secrets.token_bytes(32))).encode() for _ in range(30)]
    hellos = [await _stranger_hello(env) for _ in range(30)]
    pay = json.dumps({"federation_id": fid, "contract_id": "ab" * 32, "invoice": "lnbcrt1x"}).encode()
    requests: dict[str, Any] = {
        "GET /v1/id": lambda i: ("GET", "/v1/id", None, JSON),
        "GET /v1/info": lambda i: ("GET", "/v1/info", None, JSON),
        "GET /v1/verify": lambda i: ("GET", f"/v1/verify/{i:064x}", None, JSON),
        "routing_info": lambda i: (
            "POST",
            "/v1/routing_info",
            json.dumps({"federation_id": fid}).encode(),
            JSON,
        ),
        "create_bolt11_invoice": lambda i: ("POST", "/v1/create_bolt11_invoice", bodies[i % 30], JSON),
        "pay_invoice": lambda i: ("POST", "/v1/pay_invoice", pay, JSON),
        "send_payment": lambda i: ("POST", "/v1/send_payment", pay, JSON),
        "peer hello": lambda i: ("POST", "/v1/peer/hello", hellos[i % 30][0], hellos[i % 30][1]),
    }
    limits = HttpLimits(rate_per_second=0.001, burst=10)  # no refill to speak of during the test
    for name, make in requests.items():  # each flood meets a fresh limiter: a new client
        before = await _counts(env)
        server = HttpServer(create_app(env.gateway.public, env.log, limits), "127.0.0.1", 0)
        await server.start()
        url = f"http://127.0.0.1:{server.port}"
        statuses = []
        try:
            for i in range(2_000):
                method, path, data, headers = make(i)
                async with env.session.request(method, url + path, data=data, headers=headers) as r:
                    statuses.append(r.status)
        finally:
            await server.stop()
        assert statuses.count(429) == 1_990 and 429 not in statuses[:10], name
        after = await _counts(env)
        assert all(after[t] - before[t] <= 10 for t in after), (name, before, after)  # the burst bounds it
        if name == "create_bolt11_invoice":  # stores a row per request: only the burst's worth got through
            assert after["payments"] - before["payments"] == 10, (name, before, after)
        if (
            name == "peer hello"
        ):  # strangers' hellos store nothing (a bounded in-memory list of introductions)
            assert (after["peers"], after["peer_nonces"]) == (before["peers"], before["peer_nonces"]), name


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
