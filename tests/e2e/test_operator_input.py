"""Operator input is parsed strictly (issue 15, finding 7): every malformed value is refused
with InvalidInput (2101), changes nothing and is logged at info, never at error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import AlreadyExists, InvalidInput
from fedimint_gw.store import peers as peer_repo
from tests.e2e.conftest import Env

UNICODE_123 = "१२३"  # Devanagari digits: str.isdigit() and int() take them for 123
BIG = str(2**63)
PEER = "02" + "ab" * 32


async def _joined(env: Env) -> tuple[str, Any]:
    fed = await env.federation("strict", (2,))
    await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 100_000)
    return fed.federation_id, env.gateway.federations.client(FederationId(fed.federation_id))


async def _fees(env: Env, fid: str) -> Any:
    return next(f["fees"] for f in await env.gateway.federations.describe_all() if f["federation_id"] == fid)


async def test_bad_numbers_and_flags_are_refused_and_change_nothing(env: Env) -> None:
    fid, client = await _joined(env)
    gw = env.gateway
    balance, fees = (await client.balance()).value, await _fees(env, fid)
    refused: list[Callable[[], Awaitable[Any]]] = [
        lambda: gw.ecash_send(fid, UNICODE_123),
        lambda: gw.ecash_send(fid, "²"),
        lambda: gw.ecash_send(fid, BIG),
        lambda: gw.ecash_send(fid, 2**64),
        lambda: gw.set_fees(fid, UNICODE_123, 0),
        lambda: gw.set_fees(fid, 0, UNICODE_123),
        lambda: gw.set_fees(fid, 2**62, 0),  # accepted before, then every invoice answered 500
        lambda: gw.set_fees(fid, BIG, 0),
        lambda: gw.set_fees(fid + "\n", 1, 1),
        lambda: gw.set_fees(" " + fid, 1, 1),
        lambda: gw.leave(fid, "maybe"),
        lambda: gw.leave(fid, "yes"),
        lambda: gw.payments("", "", BIG, None),
        lambda: gw.payments("", "", 10, 2**63),
        lambda: gw.summary(UNICODE_123, None),
    ]
    for call in refused:
        with pytest.raises(InvalidInput):
            await call()
    assert (await client.balance()).value == balance
    assert await _fees(env, fid) == fees
    assert fid in {f["federation_id"] for f in await gw.federations.describe_all()}


@pytest.mark.parametrize(
    ("node_id", "url", "credit"),
    [
        (PEER, "http://", None),
        (PEER, "http://[::1", None),
        (PEER, "http://[::zz]:8175", None),
        (PEER, "ftp://peer.example", None),
        (PEER, "http://peer example", None),
        (PEER + "\n", "http://127.0.0.1:1", None),
        (" " + PEER, "http://127.0.0.1:1", None),
        (PEER, "http://127.0.0.1:1", UNICODE_123),
        (PEER, "http://127.0.0.1:1", BIG),
    ],
)
async def test_bad_peer_parameters_create_no_peer(env: Env, node_id: str, url: str, credit: Any) -> None:
    with pytest.raises(InvalidInput):
        await env.gateway.peer_add(node_id, url, credit)
    async with env.gateway.db.conn.execute("SELECT COUNT(*) FROM peers") as cur:
        row = await cur.fetchone()
    assert row is not None and row[0] == 0
    assert await peer_repo.get(env.gateway.db.conn, PEER) is None


async def test_receiving_the_same_notes_twice_is_refused(env: Env) -> None:
    fid, client = await _joined(env)
    sent = await env.gateway.ecash_send(fid, 20_000)
    first = await env.gateway.ecash_receive(fid, sent["notes"])
    assert first["received_msat"] > 0
    with pytest.raises(AlreadyExists):
        await env.gateway.ecash_receive(fid, sent["notes"])
    assert (await client.balance()).value == first["balance_msat"]
