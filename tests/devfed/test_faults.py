"""devfed's money-safety faults over the admin API: lying, withholding, dropping answers."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from contrib.devfed.server import RunningFederation

from .test_api import _rpc, _v1, _v2

G = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"  # a valid point
NOTE_OUT = {"kind": "note", "amount_msat": 1024, "B_": G}


async def _fault(session: aiohttp.ClientSession, fed: RunningFederation, peer: int, body: Any) -> Any:
    return await _v1(session, "POST", f"{fed.admin_url}/admin/guardians/{peer}/fault", body)


async def _mode(session: aiohttp.ClientSession, fed: RunningFederation, peer: int) -> Any:
    async with session.get(f"{fed.admin_url}/admin/status") as resp:
        return (await resp.json())["guardians"][peer]["fault"]


async def test_bad_fault_requests_are_refused_and_change_nothing(
    fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    await _fault(session, fed, 1, {"mode": "lying", "height_offset": 5})
    before = await _mode(session, fed, 1)
    for body in (
        {"mode": "sneaky"},
        {"mode": "lying", "height_offset": "5"},
        {"mode": "lying", "height_offset": True},
        {"mode": "lying", "contracts": {"not-hex": {}}},
        {"mode": "lying", "contracts": []},
        {"mode": "lying", "refuse_submissions": "yes"},
        {"mode": "dropping", "defer": 1},
        {"mode": "dropping", "defer": True, "discard": True},
    ):
        status, answer = await _fault(session, fed, 1, body)
        assert status == 400 and answer["error"]["name"] == "invalid_request", body
    assert await _mode(session, fed, 1) == before


async def test_a_lying_guardian_says_what_it_is_told(
    fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    cid = "ab" * 32
    lie = {"contract_id": cid, "state": "funded", "contract": {"kind": "outgoing_contract"}}
    await _fault(session, fed, 0, {"mode": "lying", "contracts": {cid: lie}, "height_offset": -7})
    liar, honest = fed.guardian_urls[0], fed.guardian_urls[1]
    assert (await _v1(session, "GET", f"{liar}/v1/contracts/{cid}", b""))[1] == lie
    assert (await _v2(session, liar, _rpc("contract", {"contract_id": cid})))["result"] == lie
    assert (await _v1(session, "GET", f"{honest}/v1/contracts/{cid}", b""))[0] == 404
    assert (await _v1(session, "GET", f"{liar}/v1/block_height", b""))[1] == {"height": 93}
    assert (await _v2(session, liar, _rpc("block_height", {})))["result"] == 93


async def test_a_dropping_guardian_holds_submissions_until_lifted(
    fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    await _fault(session, fed, 2, {"mode": "dropping", "defer": True})
    tx = json.dumps({"inputs": [], "outputs": [NOTE_OUT]})
    status, answer = await _v1(session, "POST", f"{fed.guardian_urls[2]}/v1/transactions", tx)
    assert status == 503 and answer["error"]["name"] == "guardian_offline"
    assert fed.federation.store.count_transactions() == 0  # still "in consensus"
    status, lifted = await _fault(session, fed, 2, {"mode": "honest"})
    assert status == 200
    assert [r["error"]["name"] for r in lifted["flushed"]] == ["unbalanced"]  # processed now


async def test_a_withholding_guardian_gives_no_decryption_share(
    fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    await _fault(session, fed, 3, {"mode": "withholding"})
    share = await _v2(session, fed.guardian_urls[3], _rpc("decryption_share", {"contract_id": "ab" * 32}))
    assert share["error"]["data"]["name"] == "not_funded"


async def test_a_discarding_guardian_loses_submissions(
    fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    await _fault(session, fed, 2, {"mode": "dropping", "discard": True})
    tx = json.dumps({"inputs": [], "outputs": [NOTE_OUT]})
    status, answer = await _v1(session, "POST", f"{fed.guardian_urls[2]}/v1/transactions", tx)
    assert status == 503 and answer["error"]["name"] == "guardian_offline"
    status, lifted = await _fault(session, fed, 2, {"mode": "honest"})
    assert status == 200 and lifted["flushed"] == [] and fed.federation.store.count_transactions() == 0
