"""Endpoint behaviour of v1 (REST) and v2 (WebSocket JSON-RPC): errors are clear and change nothing."""

from __future__ import annotations

import json

import aiohttp

from contrib.devfed.server import RunningFederation
from contrib.devfed.wallet import Wallet

from .conftest import WalletFactory


async def _v1(
    session: aiohttp.ClientSession, method: str, url: str, data: object
) -> tuple[int, dict[str, object]]:
    body = data if isinstance(data, (bytes, str)) else json.dumps(data)
    async with session.request(method, url, data=body) as resp:
        return resp.status, await resp.json()


async def _v2(session: aiohttp.ClientSession, url: str, frame: str) -> dict[str, object]:
    async with session.ws_connect(f"{url}/v2/ws") as ws:
        await ws.send_str(frame)
        answer: dict[str, object] = await ws.receive_json()
        return answer


def _rpc(method: str, params: object) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})


async def test_version_is_version_neutral(fed: RunningFederation, session: aiohttp.ClientSession) -> None:
    url = fed.guardian_urls[0]
    majors = {"majors": [{"major": 1, "max_minor": 0}, {"major": 2, "max_minor": 0}]}
    assert (await _v1(session, "GET", f"{url}/version", b""))[1] == majors
    assert (await _v1(session, "GET", f"{url}/v1/version", b""))[1] == majors
    assert (await _v2(session, url, _rpc("version", {})))["result"] == majors


async def test_v1_errors_change_nothing(
    fed: RunningFederation, session: aiohttp.ClientSession, make_wallet: WalletFactory
) -> None:
    url = fed.guardian_urls[1]
    wallet = await make_wallet(fed)
    await wallet.faucet(100)
    before = fed.federation.store.count_transactions()
    status, body = await _v1(session, "POST", f"{url}/v1/transactions", b"{not json")
    assert status == 400 and body["error"]["name"] == "malformed_json"
    status, body = await _v1(session, "POST", f"{url}/v1/transactions", {"inputs": "x", "outputs": []})
    assert status == 400 and body["error"]["name"] == "invalid_request"
    bad_amount = {"inputs": [], "outputs": [{"kind": "note", "amount_msat": "1", "B_": "00"}]}
    status, body = await _v1(session, "POST", f"{url}/v1/transactions", bad_amount)
    assert status == 400 and "amount_msat" in body["error"]["message"]
    status, body = await _v1(session, "GET", f"{url}/v1/contracts/{'ab' * 32}", b"")
    assert status == 404 and body["error"]["name"] == "unknown_contract"
    status, body = await _v1(session, "GET", f"{url}/v1/contracts/zz", b"")
    assert status == 400 and body["error"]["name"] == "invalid_request"
    status, body = await _v1(session, "GET", f"{url}/v1/transactions/{'cd' * 32}/signature_shares", b"")
    assert status == 404 and body["error"]["name"] == "unknown_transaction"
    assert fed.federation.store.count_transactions() == before


async def test_replayed_submission_same_answer_and_double_spend_refused(
    fed: RunningFederation, session: aiohttp.ClientSession, make_wallet: WalletFactory
) -> None:
    url = fed.guardian_urls[0]
    wallet = await make_wallet(fed)
    await wallet.faucet(16)
    note = wallet.notes()[0]
    issuance = Wallet.new_issuance(16)
    tx = {"inputs": [note.to_input()], "outputs": issuance.outputs, "signatures": [None]}
    status1, first = await _v1(session, "POST", f"{url}/v1/transactions", tx)
    spent = fed.federation.store.count_spent()
    count = fed.federation.store.count_transactions()
    status2, again = await _v1(session, "POST", f"{fed.guardian_urls[2]}/v1/transactions", tx)
    assert (status1, first) == (status2, again) == (200, first)
    v2 = await _v2(session, url, _rpc("submit_transaction", {"transaction": tx}))
    assert v2["result"] == {"txid": first["txid"], "accepted": True, "height": first["height"]}
    other = {"inputs": [note.to_input()], "outputs": Wallet.new_issuance(16).outputs, "signatures": [None]}
    status3, body = await _v1(session, "POST", f"{url}/v1/transactions", other)
    assert status3 == 409 and body["error"]["name"] == "double_spend"
    v2 = await _v2(session, url, _rpc("submit_transaction", {"transaction": other}))
    assert v2["error"]["data"]["name"] == "double_spend"
    assert fed.federation.store.count_spent() == spent
    assert fed.federation.store.count_transactions() == count


async def test_v1_unbalanced_refused(
    fed: RunningFederation, session: aiohttp.ClientSession, make_wallet: WalletFactory
) -> None:
    wallet = await make_wallet(fed)
    await wallet.faucet(8)
    tx = {"inputs": [wallet.notes()[0].to_input()], "outputs": Wallet.new_issuance(16).outputs}
    status, body = await _v1(session, "POST", f"{fed.guardian_urls[0]}/v1/transactions", tx)
    assert status == 422 and body["error"]["name"] == "unbalanced"
    assert fed.federation.store.count_spent() == 0


async def test_v2_errors(fed: RunningFederation, session: aiohttp.ClientSession) -> None:
    url = fed.guardian_urls[3]
    parse = await _v2(session, url, "{oops")
    assert parse["error"]["code"] == -32700 and parse["error"]["data"]["name"] == "malformed_json"
    envelope = await _v2(session, url, json.dumps({"id": 1, "method": "version"}))
    assert envelope["error"]["code"] == -32600
    unknown = await _v2(session, url, _rpc("no_such_method", {}))
    assert unknown["error"]["code"] == -32601 and unknown["id"] == 7
    wrong = await _v2(session, url, _rpc("contract", {"contract_id": 5}))
    assert wrong["error"]["code"] == -32602 and wrong["error"]["data"]["name"] == "invalid_request"
    missing = await _v2(session, url, _rpc("contract", {"contract_id": "ab" * 32}))
    assert missing["error"]["data"]["name"] == "unknown_contract" and missing["error"]["code"] == 1004
    share = await _v2(session, url, _rpc("decryption_share", {"contract_id": "ab" * 32}))
    assert share["error"]["data"]["name"] == "unknown_contract"
    assert fed.federation.store.count_transactions() == 0
    height = await _v2(session, url, _rpc("block_height", {}))
    assert height["result"] == 100


async def test_v2_config_matches_invite(fed: RunningFederation, session: aiohttp.ClientSession) -> None:
    answer = await _v2(session, fed.guardian_urls[0], _rpc("config", {}))
    assert answer["result"]["federation_id"] == fed.federation_id


async def test_offline_guardian_refuses(fed: RunningFederation, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{fed.admin_url}/admin/guardians/0/fault", json={"mode": "offline"}) as resp:
        assert resp.status == 200
    status, body = await _v1(session, "GET", f"{fed.guardian_urls[0]}/v1/config", b"")
    assert status == 503 and body["error"]["name"] == "guardian_offline"
    status, body = await _v1(session, "POST", f"{fed.admin_url}/admin/guardians/9/fault", {"mode": "offline"})
    assert status == 404 and body["error"]["name"] == "unknown_guardian"
