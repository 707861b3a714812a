"""Typed core endpoint calls against four in-test guardians serving a config we encode."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from fedimint_gw.fedimint.config import ClientConfig, ConsensusVersion, ModuleConfig, PeerUrl
from fedimint_gw.fedimint.encoding import Ok, decode_whole, encode
from fedimint_gw.fedimint.endpoints import (
    bootstrap_client_config,
    discover_api_versions,
    fetch_client_config,
    session_count,
)
from fedimint_gw.fedimint.errors import (
    ConfigMismatch,
    IncompatibleVersions,
    NoValidAnswer,
    ThresholdNotReached,
)
from fedimint_gw.fedimint.invite import InviteCode
from fedimint_gw.fedimint.mint_api import await_output_outcome, submit_transaction
from fedimint_gw.fedimint.mint_types import (
    FeeConsensus,
    MintClientConfig,
    MintOutputOutcomeV0,
    read_mint_output_outcome,
    write_mint_output_outcome,
)
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.serde_value import from_serde, to_serde
from fedimint_gw.fedimint.transaction import ModuleItem, OutPoint, Transaction, TransactionSubmissionOutcome
from fedimint_gw.fedimint.transport import TransportSettings
from fedimint_gw.fedimint.versions import (
    ApiVersion,
    SupportedApiVersionsSummary,
    SupportedCoreApiVersions,
    SupportedModuleApiVersions,
    client_summary,
)

FAST = TransportSettings(call_timeout=1.0)
V20 = ConsensusVersion(2, 0)


def _config(urls: dict[int, str], key_byte: int = 1) -> ClientConfig:
    mint = MintClientConfig(
        {1: bytes([key_byte]) * 96}, FeeConsensus(0, 0), {p: {1: b"\x05" * 96} for p in urls}, 100
    )
    return ClientConfig(
        {p: PeerUrl(u, f"guardian {p}") for p, u in urls.items()},
        V20,
        {"federation_name": "fake"},
        {1: ModuleConfig(1, "mint", V20, mint.to_bytes())},
    )


@dataclass
class Federation:
    """Four guardians; `liars` serve a config with other mint keys and odd answers."""

    urls: dict[int, str] = field(default_factory=dict)
    liars: set[int] = field(default_factory=set)
    silent: set[int] = field(default_factory=set)

    def answer(self, peer: int, method: str, params: object) -> object:
        liar = peer in self.liars
        if method == "client_config":
            return _config(self.urls, key_byte=9 if liar else 1).to_json()
        if method == "version":
            core = SupportedCoreApiVersions(V20, (ApiVersion(0, 9 if liar else 5),))
            module = SupportedModuleApiVersions(V20, V20, (ApiVersion(0, 1),))
            return SupportedApiVersionsSummary(core, {1: module}).to_json()
        if method == "submit_transaction":  # consensus values travel as [hex(len || encoding)]
            txid = b"\x00" * 32 if liar else Transaction.from_bytes(from_serde(params)).txid()
            return to_serde(bytes.fromhex(TransactionSubmissionOutcome(Ok(txid)).to_hex()))
        if method == "await_output_outcome":
            share = MintOutputOutcomeV0(bytes([peer]) * 48)
            return to_serde(
                encode(
                    lambda w: ModuleItem(1, encode(lambda b: write_mint_output_outcome(b, share))).write(w)
                )
            )
        if method == "session_count":
            return 99 if liar else 7
        raise AssertionError(method)

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        peer = int(request.match_info["peer"])
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            message = json.loads(msg.data)
            if peer in self.silent:
                continue
            result = self.answer(peer, message["method"], message["params"][0]["params"])
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}))
        return ws


@pytest.fixture
async def federation() -> AsyncIterator[Federation]:
    fed = Federation()
    app = web.Application()
    app.router.add_get("/g/{peer}", fed.handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fed.urls = {p: f"ws://127.0.0.1:{port}/g/{p}" for p in range(4)}
    yield fed
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_bootstrap_from_invite_takes_the_threshold_config(
    federation: Federation, session: aiohttp.ClientSession
) -> None:
    federation.liars = {3}
    expected = _config(federation.urls)
    invite = InviteCode.new(federation.urls[0], 0, expected.federation_id())
    config = await bootstrap_client_config(invite, session, FAST)
    assert config == expected
    mint = config.module_by_kind("mint")
    assert mint is not None and MintClientConfig.from_bytes(mint.raw).tbs_pks == {1: b"\x01" * 96}


async def test_bootstrap_refuses_a_config_of_another_federation(
    federation: Federation, session: aiohttp.ClientSession
) -> None:
    other = _config({0: "ws://elsewhere.example/"})
    invite = InviteCode.new(federation.urls[0], 0, other.federation_id())
    with pytest.raises(NoValidAnswer, match="hashes to federation"):
        await bootstrap_client_config(invite, session, FAST)


async def test_config_needs_a_threshold_of_identical_answers(
    federation: Federation, session: aiohttp.ClientSession
) -> None:
    """Liars keep the URLs (so the id matches) but swap the mint keys: two of them block it."""
    federation.liars = {2, 3}
    api = FederationApi(federation.urls, session, FAST)
    with pytest.raises(ThresholdNotReached):
        await fetch_client_config(api, _config(federation.urls).federation_id())
    federation.liars = set()
    with pytest.raises(ConfigMismatch):
        await fetch_client_config(api, _config({0: "ws://x/"}).federation_id())
    await api.close()


async def test_discover_api_versions(federation: Federation, session: aiohttp.ClientSession) -> None:
    federation.liars = {0}
    api = FederationApi(federation.urls, session, FAST)
    config = _config(federation.urls)
    ours = client_summary(config, [ApiVersion(0, 2)], {"mint": [ApiVersion(0, 0)]})
    versions = await discover_api_versions(api, ours)
    assert versions.core == ApiVersion(0, 5) and versions.modules == {1: ApiVersion(0, 1)}
    with pytest.raises(IncompatibleVersions):
        await discover_api_versions(api, client_summary(config, [ApiVersion(0, 6)], {}))
    await api.close()


async def test_submit_transaction_and_collect_shares(
    federation: Federation, session: aiohttp.ClientSession
) -> None:
    federation.liars = {1}
    api = FederationApi(federation.urls, session, FAST)
    tx = Transaction((), (ModuleItem(1, b"\x00\x01"),), b"\x00" * 8, ())
    outcome = await submit_transaction(api, tx)
    assert outcome.result == Ok(tx.txid())
    item = await await_output_outcome(api, 2, OutPoint(tx.txid(), 0))
    assert item.module_instance_id == 1
    assert decode_whole(item.data, read_mint_output_outcome) == MintOutputOutcomeV0(b"\x02" * 48)
    assert await session_count(api) == 7
    await api.close()


async def test_silent_guardians_make_the_threshold_unreachable(
    federation: Federation, session: aiohttp.ClientSession
) -> None:
    federation.silent = {2, 3}
    api = FederationApi(federation.urls, session, TransportSettings(call_timeout=0.3))
    with pytest.raises(ThresholdNotReached, match="did not answer"):
        await session_count(api)
    await api.close()
