"""The mint side of the fake federation: accept the client's transactions and blind-sign its outputs.

No consensus and no checks (no input signature, double-spend or balance verification): every guardian
accepts every transaction and signs every mint output with its own key share from the vector keyset,
which is what the official client needs to finish a reissue. Enough to pin the wire shapes; devfed's
real server must do the checks.

Wire shapes (as the official client speaks them, see docs/official-client.md):
- SerdeModuleEncoding values travel as a one-element JSON array holding the hex of
  varint(length) || consensus encoding;
- submit_transaction: params [hex(tx)] -> [hex(TransactionSubmissionOutcome)] where Ok(txid) = 01 || txid;
- await_transaction: params "<txid hex>" -> "<txid hex>" once accepted;
- await_output_outcome: params {"txid", "out_idx"} -> [hex(DynOutputOutcome)] where the mint's is
  varint(instance) || varint(len) || MintOutputOutcome::V0(BlindedSignatureShare: 48-byte G1).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.interop import bls_g1, tbs_vectors
from tests.interop import fedimint_testenc as enc
from tests.interop.fake_guardian import MINT_INSTANCE, FakeFederation, RpcFailure

Json = Any


def serde_module_encoding(raw: bytes) -> list[str]:
    """The JSON form of a SerdeModuleEncoding: [hex(varint(len) || bytes)]."""
    return [enc.length_prefixed(raw).hex()]


def from_serde_module_encoding(value: Json) -> bytes:
    """The bytes of a SerdeModuleEncoding's JSON form."""
    if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], str)):
        raise RpcFailure(f"expected a one-element array of hex, got {value!r}")
    return enc.decode_serde_module_encoding(value[0])


def peer_secret(fed: FakeFederation, peer: int) -> int:
    """The tbs secret key share guardian `peer` signs with (matching fake_guardian.mint_module)."""
    if fed.peers == 1:
        return bls_g1.scalar_from_le(tbs_vectors.AGGREGATE_SK_LE)
    return bls_g1.scalar_from_le(tbs_vectors.PEER_SK_SHARES_LE[peer])


@dataclass
class FakeMint:
    """Installs submit_transaction / await_transaction / await_output_outcome on a FakeFederation."""

    fed: FakeFederation
    transactions: dict[str, enc.Transaction] = field(default_factory=dict)
    # Byzantine guardians: they answer a valid-looking share made with the next peer's key.
    wrong_share_peers: frozenset[int] = frozenset()
    # How long an await_* call waits for its transaction before answering an error.
    await_timeout: float = 10.0
    _submitted: asyncio.Event = field(default_factory=asyncio.Event)

    def install(self) -> FakeMint:
        self.fed.handlers["submit_transaction"] = self.submit_transaction
        self.fed.handlers["await_transaction"] = self.await_transaction
        self.fed.handlers["await_output_outcome"] = self.await_output_outcome
        return self

    def submit_transaction(self, _peer: int, params: Json) -> Json:
        raw = from_serde_module_encoding(params)
        tx = enc.decode_transaction(raw)
        self.transactions[tx.txid.hex()] = tx
        self._submitted.set()
        return serde_module_encoding(b"\x01" + tx.txid)  # Result::Ok(TransactionId)

    async def wait_until(self, ready: Callable[[], bool]) -> bool:
        """Wait (up to await_timeout) until `ready()` holds after some submission; its final value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.await_timeout
        while not ready() and loop.time() < deadline:
            self._submitted.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._submitted.wait(), max(deadline - loop.time(), 0))
        return ready()

    async def transaction(self, txid: str) -> enc.Transaction | None:
        """The transaction `txid`, waiting for its submission like a guardian's await_* endpoints."""
        await self.wait_until(lambda: txid in self.transactions)
        return self.transactions.get(txid)

    async def await_transaction(self, _peer: int, params: Json) -> Json:
        if not isinstance(params, str) or await self.transaction(params) is None:
            raise RpcFailure(f"unknown transaction {params!r}")
        return params

    async def await_output_outcome(self, peer: int, params: Json) -> Json:
        if not isinstance(params, dict):
            raise RpcFailure(f"expected an OutPoint, got {params!r}")
        tx = await self.transaction(str(params.get("txid")))
        index = params.get("out_idx")
        if tx is None or not isinstance(index, int) or not 0 <= index < len(tx.outputs):
            raise RpcFailure(f"unknown output {params!r}")
        output = tx.outputs[index]
        variant, fields = output.variant()
        if output.instance_id != MINT_INSTANCE or variant != 0:
            raise RpcFailure(f"not a mint output: {params!r}")
        _amount, pos = enc.read_varint(fields, 0)
        blind_nonce = bls_g1.decompress(fields[pos : pos + 48])
        signer = (peer + 1) % self.fed.peers if peer in self.wrong_share_peers else peer
        share = bls_g1.compress(bls_g1.multiply(blind_nonce, peer_secret(self.fed, signer)))
        outcome = enc.module_value(MINT_INSTANCE, enc.enum_variant(0, share))
        return serde_module_encoding(outcome)
