"""What the v1 and v2 adapters share: everything that reads or moves the gateway's own ecash.

Each adapter subclasses `LedgerClient` and adds its version's own dialect (registration,
receives, cancel or forfeit). Only the adapter modules import this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import FederationMisbehaved, InvalidInput, NotFound
from fedimint_gw.federation.adapter import AdapterContext, FederationDescription
from fedimint_gw.federation.client import (
    EcashFees,
    EcashNotes,
    FederationClient,
    FederationInfo,
    IncomingRequest,
    NotesSummary,
    OutgoingContract,
)
from fedimint_gw.federation.devfed.guardians import (
    FederationKeys,
    GuardianApi,
    Guardians,
    RemoteError,
    checked_keys,
    describe_config,
    object_id,
    to_gateway_error,
)
from fedimint_gw.federation.devfed.ledger import Ledger
from fedimint_gw.federation.devfed.notes_format import (
    decode_notes,
    derived_outputs,
    encode_notes,
    parse_hash,
    reissue_inputs,
)
from fedimint_gw.federation.ecash import Note


class DevfedFactory:
    """What both devfed adapter factories share; each adds how it reads the config and its client."""

    async def fetch_config(self, session: aiohttp.ClientSession, url: str, timeout: float) -> dict[str, Any]:
        """The config exactly as served (the gateway hashes it)."""
        try:
            config = await self._raw_config(session, url.rstrip("/"), timeout)
        except RemoteError as exc:
            raise to_gateway_error(exc, f"config from {url}") from None
        if not isinstance(config, dict):
            raise FederationMisbehaved(f"the config served at {url} is not a JSON object")
        return config

    def describe(self, config: Mapping[str, Any]) -> FederationDescription:
        """Name, threshold and guardian URLs (ValueError if malformed)."""
        return describe_config(config)

    def create(self, ctx: AdapterContext) -> FederationClient:
        """A client for one federation; checks the config's hash and key shares first."""
        return self._client(ctx, checked_keys(ctx.config, ctx.federation_id))

    async def _raw_config(self, session: aiohttp.ClientSession, url: str, timeout: float) -> object:
        raise NotImplementedError

    def _client(self, ctx: AdapterContext, keys: FederationKeys) -> FederationClient:
        raise NotImplementedError


class LedgerClient:
    """The version-neutral part of a devfed `FederationClient`."""

    def __init__(self, ctx: AdapterContext, keys: FederationKeys, api: GuardianApi) -> None:
        self._ctx = ctx
        self._keys = keys
        self._guardians = Guardians(keys, ctx.request_timeout)
        self._ledger = Ledger(ctx.federation_id, keys, self._guardians, api, ctx.wallet, ctx.gateway_secret)
        self.gateway_pubkey = self._ledger.gateway_pubkey

    @property
    def misbehaving_guardians(self) -> frozenset[int]:
        """Peer ids whose shares failed verification so far (diagnostics)."""
        return frozenset(self._ledger.misbehaving)

    async def info(self) -> FederationInfo:
        """Federation id, name, version, guardians, fee and current height (one network call)."""
        return FederationInfo(
            federation_id=FederationId(self._ctx.federation_id),
            name=self._keys.name,
            api_version=self._ctx.api_version,
            guardians=len(self._keys.guardians),
            threshold=self._keys.threshold,
            tx_fee=self._keys.tx_fee,
            block_height=await self.block_height(),
        )

    async def balance(self) -> Msat:
        """The gateway's spendable notes (no network)."""
        return Msat((await self._ctx.wallet.balance()).value)

    async def block_height(self) -> int:
        """The federation's block height."""
        return await self._ledger.block_height()

    async def verify_outgoing(self, contract_id: str) -> OutgoingContract:
        """The user's outgoing contract (NotFound if absent). Read-only."""
        return await self._ledger.verify_outgoing(parse_hash(contract_id, "contract id"))

    async def claim_outgoing(self, contract_id: str, preimage: bytes) -> Msat:
        """Claim with the preimage into gateway notes; returns amount - fee. Idempotent."""
        return await self._ledger.claim_outgoing(parse_hash(contract_id, "contract id"), preimage)

    async def spend_ecash(self, amount: Msat, operation_id: str) -> EcashNotes:
        """Reissue exactly `amount` into fresh notes and hand them out serialised."""
        if amount.value <= 0:
            raise InvalidInput("the amount of ecash to spend must be positive")
        ledger, oid = self._ledger, f"spend:{operation_id}"
        given = derived_outputs(ledger.secret, oid, amount.value)
        fixed = [o.to_output() for o in given]
        build = ledger.builder([], fixed)
        _, result = await ledger.run(
            oid, "spend_ecash", build, spend=amount, fixed_outputs=fixed, given=given
        )
        notes = [Note(int(n["amount_msat"]), str(n["secret"]), str(n["C"])) for n in result["given"]]
        if sum(n.amount_msat for n in notes) != amount.value:
            raise InvalidInput(f"operation id {operation_id!r} was already used for another amount")
        return EcashNotes(amount, encode_notes(ledger.federation_id, notes), ledger.keys.tx_fee)

    async def ecash_fees(self, amount: Msat) -> EcashFees:
        """devfed charges one flat transaction fee, whatever the notes."""
        return EcashFees(spend=self._keys.tx_fee, reissue=self._keys.tx_fee)

    async def receive_ecash(self, notes: str) -> Msat:
        """Reissue out-of-band notes into gateway notes; returns the msat received."""
        ledger, (federation_id, parsed) = self._ledger, decode_notes(notes)
        if federation_id != ledger.federation_id:
            raise InvalidInput(
                f"these notes belong to federation {federation_id[:8]}, not {ledger.federation_id[:8]}"
            )
        reissue_id, build, total = ledger.reissue_plan(parsed)
        if total <= ledger.keys.tx_fee:
            raise InvalidInput(f"notes worth {total} cannot pay the {ledger.keys.tx_fee} transaction fee")
        op, _ = await ledger.run(reissue_id, "receive_ecash", build, receive=total)
        return Msat(sum(o.amount_msat for o in op.outputs))

    async def inspect_ecash(self, notes: str) -> NotesSummary:
        """Decode notes; `received` when a reissue of exactly these notes exists in our wallet."""
        ledger, (federation_id, parsed) = self._ledger, decode_notes(notes)
        oid = "reissue:" + object_id(reissue_inputs(parsed))
        received = federation_id == ledger.federation_id and await ledger.wallet.get(oid) is not None
        total = Msat(sum(n.amount_msat for n in parsed))
        return NotesSummary(federation_id, total, oid, received, ledger.keys.tx_fee)

    async def resume_operations(self) -> int:
        """Finish operations a crash left between prepare and complete (call after start)."""
        return await self._ledger.resume()

    async def close(self) -> None:
        """Stop finishing notes in the background (the session belongs to the gateway)."""
        await self._ledger.close()

    async def funding_fee(self, request: IncomingRequest, operation_id: str) -> Msat:
        """devfed's flat transaction fee, once the funding is stored (NotFound before)."""
        if await self._ledger.wallet.get(f"fund:{operation_id}") is None:
            raise NotFound(f"no funding stored under operation {operation_id}")
        return self._keys.tx_fee

    async def abandon_funding(self, operation_id: str) -> bool:
        """Give up `fund_incoming(…, operation_id)` whose outcome is unknown. True: it certainly
        never happened and never will (its notes are spendable again). False: it happened."""
        return await self._ledger.abandon_funding(operation_id)
