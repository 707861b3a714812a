"""The `ln` module's guardian endpoints (``module_0_*``), as fedimintd v0.7 serves them.

Shapes: contract ids and hashes travel as bare hex strings; `account` answers a
`ContractAccount` or null; the `await_*` endpoints hold the call until their condition holds (up
to the federation's await bound, then an error the client retries on). `block_count` is the
consensus block count; `await_block_height h` returns null once the count exceeds `h`.
`register_gateway` takes a `LightningGatewayAnnouncement` and keeps it for its TTL;
`list_gateways` serves the unexpired ones with the TTL counted down.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from contrib.devfed.fedimint.ln import LN_INSTANCE_ID, LnConsensus
from fedimint_gw.fedimint import json_fields as jf
from fedimint_gw.fedimint.encoding import U64_MAX
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.ln.contracts import (
    ContractAccount,
    FundedIncoming,
    IncomingContractOffer,
    OutgoingContract,
    PreimageState,
    ciphertext_json,
    preimage_of_key,
)
from fedimint_gw.fedimint.ln.gateway import GatewayAnnouncement

if TYPE_CHECKING:
    from contrib.devfed.fedimint.server import FedimintFederation

log = logging.getLogger("devfed.fedimint")
Endpoint = Callable[[object], Awaitable[object]]
MAX_GATEWAY_TTL_SECS = 24 * 60 * 60
MAX_GATEWAYS = 1000
TIMEOUT = 408


class LnAwaitTimeout(Exception):
    """An await endpoint's condition did not hold within the bound."""


def _id(params: object, what: str = "contract id") -> bytes:
    return jf.hex_bytes(params, what, 32)


class LnEndpoints:
    """The endpoints of one guardian (the module's state is shared consensus state)."""

    def __init__(self, federation: FedimintFederation, ln: LnConsensus) -> None:
        self.fed = federation
        self.ln = ln

    def clock(self) -> float:
        return self.fed.clock()

    def table(self) -> dict[str, Endpoint]:
        prefix = f"module_{LN_INSTANCE_ID}_"
        endpoints: dict[str, Endpoint] = {
            "block_count": self.block_count,
            "await_block_height": self.await_block_height,
            "account": self.account,
            "await_account": self.await_account,
            "await_outgoing_contract_cancelled": self.await_outgoing_contract_cancelled,
            "await_preimage_decryption": self.await_preimage_decryption,
            "offer": self.offer,
            "await_offer": self.await_offer,
            "list_gateways": self.list_gateways,
            "register_gateway": self.register_gateway,
        }
        return {prefix + name: fn for name, fn in endpoints.items()}

    async def _wait(self, predicate: Callable[[], bool]) -> None:
        try:
            await self.fed.sequencer.wait_for(predicate, self.fed.await_timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise LnAwaitTimeout("not yet") from None

    async def block_count(self, params: object) -> object:
        return self.ln.store.block_count()

    async def await_block_height(self, params: object) -> object:
        height = jf.integer(params, "block height", U64_MAX)
        await self._wait(lambda: self.ln.store.block_count() > height)
        return None

    async def account(self, params: object) -> object:
        found = self.ln.store.account(_id(params))
        return None if found is None else found.to_json()

    async def await_account(self, params: object) -> object:
        cid = _id(params)
        await self._wait(lambda: self.ln.store.account(cid) is not None)
        return self._account_json(cid)

    def _account_json(self, cid: bytes) -> object:
        found = self.ln.store.account(cid)
        if found is None:  # pragma: no cover - waited for
            raise LnAwaitTimeout("gone")
        return found.to_json()

    async def await_outgoing_contract_cancelled(self, params: object) -> object:
        cid = _id(params)

        def cancelled() -> bool:
            found = self.ln.store.account(cid)
            return (
                found is not None
                and isinstance(found.contract, OutgoingContract)
                and found.contract.cancelled
            )

        await self._wait(cancelled)
        return self._account_json(cid)

    async def await_preimage_decryption(self, params: object) -> object:
        """[IncomingContractAccount {amount, contract}, preimage hex | null] once decryption ended."""
        cid = _id(params)

        def decided(found: ContractAccount | None) -> FundedIncoming | None:
            if found is None or not isinstance(found.contract, FundedIncoming):
                return None
            state = found.contract.contract.decrypted_preimage.state
            return None if state is PreimageState.PENDING else found.contract

        await self._wait(lambda: decided(self.ln.store.account(cid)) is not None)
        account = self.ln.store.account(cid)
        funded = decided(account)
        if account is None or funded is None:  # pragma: no cover - waited for
            raise LnAwaitTimeout("gone")
        full = account.to_json()["contract"]
        inner = full.get("Incoming", {}).get("contract") if isinstance(full, dict) else None
        decrypted = funded.contract.decrypted_preimage
        some = decrypted.state is PreimageState.SOME
        preimage = list(preimage_of_key(decrypted.key)) if some else None  # `Preimage([u8; 32])`: numbers
        return [{"amount": account.amount, "contract": inner}, preimage]

    async def offer(self, params: object) -> object:
        found = self.ln.store.offer(_id(params, "payment hash"))
        return None if found is None else _offer_json(found)

    async def await_offer(self, params: object) -> object:
        payment_hash = _id(params, "payment hash")
        await self._wait(lambda: self.ln.store.offer(payment_hash) is not None)
        found = self.ln.store.offer(payment_hash)
        if found is None:  # pragma: no cover
            raise LnAwaitTimeout("gone")
        return _offer_json(found)

    async def list_gateways(self, params: object) -> object:
        now = self.clock()
        out = []
        for info_json, vetted, valid_until in self.ln.store.gateways(now):
            ttl = max(0, int(valid_until - now))
            out.append({"info": json.loads(info_json), "vetted": vetted, "ttl": {"secs": ttl, "nanos": 0}})
        return out

    async def register_gateway(self, params: object) -> object:
        announcement = GatewayAnnouncement.from_json(params)
        if announcement.ttl_secs > MAX_GATEWAY_TTL_SECS:
            raise DecodeError(f"a registration lives at most {MAX_GATEWAY_TTL_SECS} s")
        now = self.clock()
        store = self.ln.store
        with store.store.atomic():
            if len(store.gateways(now)) >= MAX_GATEWAYS:
                raise DecodeError("too many gateways registered")
            info = announcement.info
            store.put_gateway(info.gateway_id, json.dumps(info.to_json()), False, now + announcement.ttl_secs)
        log.info("ln: gateway %s registered for %d s", info.gateway_id.hex(), announcement.ttl_secs)
        return None


def _offer_json(offer: IncomingContractOffer) -> object:
    """serde form (the ciphertext as threshold_crypto serializes it)."""
    return {
        "amount": offer.amount,
        "hash": offer.hash.hex(),
        "encrypted_preimage": ciphertext_json(offer.encrypted_preimage),
        "expiry_time": offer.expiry_time,
    }
