"""Private: what the devfed adapters read from a federation and decide money on.

Every read here is a threshold read (`quorum.Quorum`): contracts (existence, state, amount,
timelock), the block height, transaction outcomes and submissions. Only a preimage that
matches its contract's payment hash is taken from a single guardian. `poll` repeats an
attempt until it decides (the adapters' `await_preimage`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import FederationMisbehaved, FederationUnreachable, InvalidInput
from fedimint_gw.federation.client import IncomingOutcome, IncomingState, OutgoingContract, OutgoingState
from fedimint_gw.federation.devfed.guardians import (
    GuardianApi,
    GuardianKey,
    Guardians,
    Json,
    RemoteError,
    object_id,
    txid_of,
)
from fedimint_gw.federation.devfed.quorum import Quorum

_OUTGOING_STATES = {
    "funded": OutgoingState.FUNDED,
    "claimed": OutgoingState.CLAIMED,
    "cancelled": OutgoingState.CANCELLED,
    "refunded": OutgoingState.REFUNDED,
}


def shows_preimage(view: Mapping[str, Any]) -> bool:
    """Whether a contract view (already checked to be its contract) shows the preimage of its
    payment hash: a fact that proves itself, so one guardian's word is enough."""
    body, preimage = view.get("contract"), view.get("preimage")
    if not isinstance(body, dict) or not isinstance(preimage, str):
        return False
    try:
        return hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == body.get("payment_hash")
    except ValueError:
        return False


class Reads:
    """Threshold reads and submissions of one federation."""

    def __init__(self, guardians: Guardians, api: GuardianApi, misbehaving: set[int]) -> None:
        self.quorum = Quorum(guardians)
        self._api = api
        self._misbehaving = misbehaving  # shared with the ledger: peer ids caught answering garbage

    async def contract(self, contract_id: str, preimage_ok: bool = False) -> Json:
        """The contract view `threshold` guardians agree on (NotFound if `threshold` know no
        such contract). A view that is not of this contract counts as no answer. With
        `preimage_ok`, a view showing a preimage that matches the contract's payment hash
        is taken from any one guardian (it proves itself)."""

        async def ask(g: GuardianKey) -> Json:
            view = await self._api.contract(g.url, contract_id)
            body = view.get("contract")
            if not isinstance(body, dict) or object_id(body) != contract_id or "state" not in view:
                self._misbehaving.add(g.peer_id)
                raise RemoteError("malformed_answer", f"{g.url}: a view that is not contract {contract_id}")
            return view

        return await self.quorum.agree(
            ask, f"contract {contract_id[:16]}", verified=shows_preimage if preimage_ok else None
        )

    async def block_height(self) -> int:
        """The block height `threshold` guardians agree on."""
        return await self.quorum.agree(lambda g: self._api.block_height(g.url), "block height")

    async def verify_outgoing(self, contract_id: str, gateway_pubkey: str) -> OutgoingContract:
        """An outgoing contract as `threshold` guardians show it (NotFound if they know none)."""
        body = (view := await self.contract(contract_id))["contract"]
        if body.get("kind") != "outgoing_contract":
            raise InvalidInput(f"contract {contract_id} is a {body.get('kind')}, not an outgoing contract")
        try:
            return OutgoingContract(
                contract_id=contract_id,
                payment_hash=str(body["payment_hash"]),
                amount=Msat(int(body["amount_msat"])),
                timelock_height=int(body["timelock_height"]),
                state=_OUTGOING_STATES[str(view["state"])],
                gateway_key_matches=body.get("gateway_pubkey") == gateway_pubkey,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise FederationMisbehaved(f"malformed outgoing contract view: {exc!r}") from None

    async def submit(self, tx: Json, what: str) -> Json:
        """Submit to every guardian; the acceptance `threshold` of them confirm, or the typed
        refusal `threshold` of them give. FederationUnreachable: the outcome is unknown."""
        txid = txid_of(tx)

        async def ask(g: GuardianKey) -> Json:
            answer = await self._api.submit(g.url, tx)
            if answer.get("txid") != txid:
                raise RemoteError("malformed_answer", f"{g.url}: accepted another transaction id")
            return answer

        return await self.quorum.agree(ask, what, key=lambda a: str(a.get("txid")))

    async def transaction(self, txid: str) -> Json:
        """An accepted transaction's status, confirmed by `threshold` guardians (NotFound when
        `threshold` do not know it: not proof that it never will be accepted)."""
        return await self.quorum.agree(
            lambda g: self._api.transaction(g.url, txid),
            f"status of {txid[:16]}",
            key=lambda a: str(a.get("txid")),
        )


async def poll(attempt: Callable[[], Awaitable[IncomingOutcome | None]], timeout: float) -> IncomingOutcome:
    """Call `attempt` until it decides or `timeout` passes (then PENDING, or the last
    FederationUnreachable if the federation never answered during the last attempt)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(timeout, 0.0)
    delay = 0.02
    while True:
        failure: FederationUnreachable | None = None
        try:
            outcome = await attempt()
        except FederationUnreachable as exc:
            failure, outcome = exc, None
        if outcome is not None:
            return outcome
        remaining = deadline - loop.time()
        if remaining <= 0:
            if failure is not None:
                raise failure
            return IncomingOutcome(IncomingState.PENDING)
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.5)
