"""Typed calls of the core endpoints a gateway needs (names from `fedimint-core` endpoint_constants).

- `client_config` (params null) -> the client config JSON. The federation id only covers the
  guardian URLs, not the module keys, so the config is taken on a threshold of identical
  answers and must hash to the expected id.
- `version` (params null) -> `SupportedApiVersionsSummary` JSON, asked of every guardian.
- `submit_transaction` (params: hex of the transaction) -> hex of `TransactionSubmissionOutcome`.
- `await_output_outcome` (params: OutPoint JSON) -> hex of the output's `DynOutputOutcome`;
  asked per guardian, because mint outcomes are per-guardian signature shares.
"""

from __future__ import annotations

import aiohttp

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.fedimint.config import ClientConfig, parse_client_config
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.invite import InviteCode
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transport import TransportSettings
from fedimint_gw.fedimint.versions import (
    ApiVersionSet,
    ConsensusMatch,
    SupportedApiVersionsSummary,
    negotiate,
)

CLIENT_CONFIG = "client_config"
VERSION = "version"
SUBMIT_TRANSACTION = "submit_transaction"
AWAIT_OUTPUT_OUTCOME = "await_output_outcome"
SESSION_COUNT = "session_count"


def _verified_config(result: object, federation_id: FederationId) -> ClientConfig:
    config = parse_client_config(result)
    config.check_federation_id(federation_id)
    return config


async def fetch_client_config(api: FederationApi, federation_id: FederationId) -> ClientConfig:
    """The config a threshold of guardians serve identically, checked against the id."""
    return _verified_config(await api.threshold_request(CLIENT_CONFIG), federation_id)


async def bootstrap_client_config(
    invite: InviteCode,
    session: aiohttp.ClientSession,
    settings: TransportSettings | None = None,
) -> ClientConfig:
    """From an invite code: a first config from the guardians it names (checked against the
    id, which pins the guardian list), then the threshold-agreed config from all guardians."""
    seed = FederationApi(invite.peers, session, settings, api_secret=invite.api_secret)
    try:
        first = await seed.first_valid(
            CLIENT_CONFIG, None, lambda _p, r: _verified_config(r, invite.federation_id)
        )
    finally:
        await seed.close()
    full = FederationApi.from_config(first, session, settings, api_secret=invite.api_secret)
    try:
        return await fetch_client_config(full, invite.federation_id)
    finally:
        await full.close()


async def discover_api_versions(
    api: FederationApi,
    client: SupportedApiVersionsSummary,
    rule: ConsensusMatch = ConsensusMatch.SAME_MAJOR,
) -> ApiVersionSet:
    """Ask every guardian's `version` and negotiate (`versions.negotiate`); malformed answers
    count as no answer.

    The default rule is what the official client (v0.7-era WASM build) was seen to do: a guardian
    whose consensus minor differs from the config's is still used (docs/official-client.md).
    Transactions and outcomes are in `mint_api.py` (their wire form was checked against that client).
    """
    answers = await api.each(VERSION)
    parsed: dict[int, SupportedApiVersionsSummary] = {}
    for peer, answer in answers.items():
        if answer.ok:
            try:
                parsed[peer] = SupportedApiVersionsSummary.from_json(answer.result)
            except DecodeError:
                continue
    return negotiate(client, parsed, len(api.peers), rule)


async def session_count(api: FederationApi) -> int:
    """The number of finished consensus sessions, on a threshold of guardians."""
    result = await api.threshold_request(SESSION_COUNT)
    if isinstance(result, bool) or not isinstance(result, int) or result < 0:
        raise DecodeError("session_count answer is not a count")
    return result
