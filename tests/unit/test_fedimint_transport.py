"""Guardian transport and federation queries against four in-test WebSocket guardians."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from fedimint_gw.fedimint.errors import GuardianRpcError, NoValidAnswer, ThresholdNotReached
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transport import GuardianConnection, TransportSettings, module_method

FAST = TransportSettings(call_timeout=0.5, connect_timeout=1.0, reconnect_delay=5.0)


@dataclass
class Guardians:
    """Four fake guardians; `modes[peer]` is honest | liar | staller | error | drop."""

    modes: dict[int, str] = field(default_factory=lambda: {0: "honest", 1: "honest", 2: "liar", 3: "staller"})
    seen: list[tuple[int, dict[str, object], str | None]] = field(default_factory=list)
    urls: dict[int, str] = field(default_factory=dict)

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        peer = int(request.match_info["peer"])
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            message = json.loads(msg.data)
            self.seen.append((peer, message, request.headers.get("Authorization")))
            mode = self.modes[peer]
            if mode == "staller":
                continue
            if mode == "error":
                reply = {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32000, "message": "nope"}}
            else:
                value = 666 if mode == "liar" else 42
                reply = {
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "result": {"method": message["method"], "v": value},
                }
            await ws.send_str(json.dumps(reply))
            if mode == "drop":
                await ws.close()
        return ws


@pytest.fixture
async def guardians() -> AsyncIterator[Guardians]:
    state = Guardians()
    app = web.Application()
    app.router.add_get("/g/{peer}", state.handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.urls = {p: f"ws://127.0.0.1:{port}/g/{p}" for p in range(4)}
    yield state
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_wire_format_and_module_method_names(
    guardians: Guardians, session: aiohttp.ClientSession
) -> None:
    api = FederationApi(guardians.urls, session, FAST, api_secret="s3cret")
    result = await api.request_peer(0, module_method(1, "note_spent"), {"x": 1}, auth="pw")
    assert result == {"method": "module_1_note_spent", "v": 42}
    peer, message, authorization = guardians.seen[0]
    assert peer == 0
    assert message["jsonrpc"] == "2.0" and isinstance(message["id"], int)
    assert message["params"] == [{"auth": "pw", "params": {"x": 1}}]
    assert authorization == "Basic " + base64.b64encode(b"fedimint:s3cret").decode()
    await api.request_peer(1, "client_config")
    assert guardians.seen[1][1]["params"] == [{"auth": None, "params": None}]
    await api.close()


async def test_threshold_with_a_liar_and_a_staller_fails(
    guardians: Guardians, session: aiohttp.ClientSession
) -> None:
    api = FederationApi(guardians.urls, session, FAST)
    with pytest.raises(ThresholdNotReached) as info:
        await api.threshold_request("session_count")
    message = info.value.message
    assert "3 of 4" in message and "2: answered differently" in message and "3: " in message
    await api.close()


async def test_threshold_is_reached_without_waiting_for_the_staller(
    guardians: Guardians, session: aiohttp.ClientSession
) -> None:
    guardians.modes[2] = "honest"
    api = FederationApi(guardians.urls, session, TransportSettings(call_timeout=30.0))
    started = time.monotonic()
    assert await api.threshold_request("session_count") == {"method": "session_count", "v": 42}
    assert time.monotonic() - started < 5.0  # the staller's 30 s timeout was not waited for
    await api.close()


async def test_one_liar_is_outvoted(guardians: Guardians, session: aiohttp.ClientSession) -> None:
    guardians.modes[3] = "honest"
    api = FederationApi(guardians.urls, session, FAST)
    assert await api.threshold_request("session_count") == {"method": "session_count", "v": 42}
    await api.close()


async def test_query_fails_fast_once_threshold_is_impossible(
    guardians: Guardians, session: aiohttp.ClientSession
) -> None:
    guardians.modes.update({0: "error", 1: "liar", 2: "honest", 3: "error"})
    api = FederationApi(guardians.urls, session, TransportSettings(call_timeout=30.0))
    started = time.monotonic()
    with pytest.raises(ThresholdNotReached):
        await api.threshold_request("session_count")
    assert time.monotonic() - started < 5.0
    await api.close()


async def test_first_valid_skips_answers_that_fail_verification(
    guardians: Guardians, session: aiohttp.ClientSession
) -> None:
    guardians.modes.update({0: "liar", 1: "staller", 2: "liar", 3: "honest"})
    api = FederationApi(guardians.urls, session, FAST)

    def verify(peer: int, result: object) -> int | None:
        assert isinstance(result, dict)
        return peer if result["v"] == 42 else None

    assert await api.first_valid("await_preimage", None, verify) == 3
    guardians.modes[3] = "liar"
    with pytest.raises(NoValidAnswer, match="failed verification"):
        await api.first_valid("await_preimage", None, verify)
    await api.close()


async def test_rpc_error_is_typed(guardians: Guardians, session: aiohttp.ClientSession) -> None:
    guardians.modes[0] = "error"
    connection = GuardianConnection(0, guardians.urls[0], session, FAST)
    with pytest.raises(GuardianRpcError) as info:
        await connection.request("version", None)
    assert info.value.rpc_code == -32000 and "nope" in info.value.message
    await connection.close()


async def test_stalled_call_times_out(guardians: Guardians, session: aiohttp.ClientSession) -> None:
    connection = GuardianConnection(3, guardians.urls[3], session, FAST)
    with pytest.raises(GuardianRpcError, match="did not answer"):
        await connection.request("version", None, timeout=0.2)
    await connection.close()


async def test_reconnects_after_the_guardian_drops_the_socket(
    guardians: Guardians, session: aiohttp.ClientSession
) -> None:
    guardians.modes[0] = "drop"
    connection = GuardianConnection(0, guardians.urls[0], session, FAST)
    for _ in range(3):
        assert await connection.request("version", None) == {"method": "version", "v": 42}
        for _ in range(50):  # let the reader see the close frame
            if connection._ws is None or connection._ws.closed:
                break
            await asyncio.sleep(0.01)
    assert connection.connects == 3
    await connection.close()


async def test_failed_connect_backs_off_on_the_injected_clock(session: aiohttp.ClientSession) -> None:
    now = [100.0]
    connection = GuardianConnection(0, "ws://127.0.0.1:9/none", session, FAST, monotonic=lambda: now[0])
    with pytest.raises(GuardianRpcError, match="cannot connect"):
        await connection.request("version", None)
    with pytest.raises(GuardianRpcError, match="retrying in"):
        await connection.request("version", None)
    now[0] += 5.0
    with pytest.raises(GuardianRpcError, match="cannot connect"):
        await connection.request("version", None)


async def test_each_reports_answers_and_errors(guardians: Guardians, session: aiohttp.ClientSession) -> None:
    api = FederationApi(guardians.urls, session, FAST)
    answers = await api.each("version")
    assert [a.ok for a in answers.values()] == [True, True, True, False]
    assert answers[2].result == {"method": "version", "v": 666}
    await api.close()


async def test_concurrent_calls_share_one_connection(
    guardians: Guardians, session: aiohttp.ClientSession
) -> None:
    connection = GuardianConnection(0, guardians.urls[0], session, FAST)
    results = await asyncio.gather(*(connection.request(f"m{i}", i) for i in range(10)))
    assert [r["method"] for r in results if isinstance(r, dict)] == [f"m{i}" for i in range(10)]
    assert connection.connects == 1
    await connection.close()
