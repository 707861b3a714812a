"""The LNv2 module endpoints of one guardian (``module_{instance}_{name}``), serde JSON params:

- ``consensus_block_count`` () -> u64
- ``await_incoming_contract`` [contract id hex, expiration (unix time)] -> OutPoint | null
- ``await_preimage`` [OutPoint, expiration (block count)] -> [32 ints] | null
- ``decryption_key_share`` OutPoint -> G1 hex (this guardian's own share)
- ``outgoing_contract_expiration`` OutPoint -> [contract id hex, blocks left] | null
- ``gateways`` () -> [url]
The await endpoints block until their answer exists, up to the federation's await bound (then
408, and clients ask again), and answer null once the expiration has passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from contrib.devfed.fedimint.lnv2 import Lnv2Guardian, Lnv2Module
from fedimint_gw.fedimint import json_fields as jf
from fedimint_gw.fedimint.encoding import U64_MAX
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.lnv2.gateway_api import parse_outpoint

if TYPE_CHECKING:
    from contrib.devfed.fedimint.rpc import Endpoint

NOT_FOUND = 404
TIMEOUT = 408


def _pair(params: object, what: str) -> tuple[object, int]:
    if not isinstance(params, list) or len(params) != 2:
        raise DecodeError(f"{what} takes a [value, expiration] pair")
    return params[0], jf.integer(params[1], f"{what} expiration", U64_MAX)


class Lnv2Endpoints:
    """Guardian ``guardian.peer_id``'s LNv2 endpoints over the shared module state."""

    def __init__(
        self,
        module: Lnv2Module,
        guardian: Lnv2Guardian,
        await_timeout: Callable[[], float],
        rpc_error: Callable[[int, str], Exception],
    ) -> None:
        self.module = module
        self.guardian = guardian
        self._timeout = await_timeout
        self._error = rpc_error

    def endpoints(self, instance: int) -> dict[str, Endpoint]:
        named: dict[str, Callable[[object], Awaitable[object]]] = {
            "consensus_block_count": self.consensus_block_count,
            "await_incoming_contract": self.await_incoming_contract,
            "await_preimage": self.await_preimage,
            "decryption_key_share": self.decryption_key_share,
            "outgoing_contract_expiration": self.outgoing_contract_expiration,
            "gateways": self.gateways,
        }
        return {f"module_{instance}_{name}": fn for name, fn in named.items()}

    async def _wait(self, ready: Callable[[], bool]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout()
        while not ready():
            left = deadline - loop.time()
            if left <= 0:
                raise self._error(TIMEOUT, "not there (yet): ask again")
            try:
                await asyncio.wait_for(self.module.changed.wait(), min(left, 1.0))
            except (TimeoutError, asyncio.TimeoutError):
                continue

    async def consensus_block_count(self, params: object) -> object:
        return self.module.block_count()

    async def await_incoming_contract(self, params: object) -> object:
        raw_id, expiration = _pair(params, "await_incoming_contract")
        contract_id = jf.hex_bytes(raw_id, "contract id", 32)

        def ready() -> bool:
            return self.module.incoming_outpoint(contract_id) is not None or expiration <= self.module.now()

        await self._wait(ready)
        found = self.module.incoming_outpoint(contract_id)
        return None if found is None else found.to_json()

    async def await_preimage(self, params: object) -> object:
        raw_outpoint, expiration = _pair(params, "await_preimage")
        outpoint = parse_outpoint(raw_outpoint)

        def ready() -> bool:
            return self.module.preimage(outpoint) is not None or expiration <= self.module.block_count()

        await self._wait(ready)
        preimage = self.module.preimage(outpoint)
        return None if preimage is None else list(preimage)

    async def decryption_key_share(self, params: object) -> object:
        outpoint = parse_outpoint(params)
        contract = self.module.incoming_contract(outpoint)
        if contract is None:
            raise self._error(NOT_FOUND, "No decryption key share found")
        return self.guardian.dk_share(contract).encode().hex()

    async def outgoing_contract_expiration(self, params: object) -> object:
        found = self.module.outgoing_expiration(parse_outpoint(params))
        return None if found is None else [found[0].hex(), found[1]]

    async def gateways(self, params: object) -> object:
        return self.module.gateways()
