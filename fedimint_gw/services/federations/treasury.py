"""The gateway's own ecash: `fedimint-balances`, `fedimint-ecash-send`, `fedimint-ecash-receive`."""

from __future__ import annotations

import secrets
from typing import Any, Protocol

from fedimint_gw.clock import Clock
from fedimint_gw.domain import parse
from fedimint_gw.errors import AlreadyExists, InvalidInput
from fedimint_gw.federation.client import VOLATILE_PREFIX
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.lightning.node import LightningNode
from fedimint_gw.services.federations.manager import FederationManager
from fedimint_gw.store.db import Database


class GatewayParts(Protocol):
    """What the treasury uses of the gateway, read at each call (after the input is checked: a
    bad request is refused even while the gateway is still starting)."""

    @property
    def db(self) -> Database: ...

    @property
    def node(self) -> LightningNode: ...

    @property
    def federations(self) -> FederationManager: ...

    @property
    def clock(self) -> Clock: ...


class Treasury:
    """What the operator does with the gateway's own ecash and liquidity."""

    def __init__(self, parts: GatewayParts) -> None:
        self._parts = parts

    async def balances(self) -> dict[str, Any]:
        """The `fedimint-balances` result: Lightning liquidity and ecash per federation."""
        liq = await self._parts.node.liquidity()
        feds = []
        total = 0
        for fed in await self._parts.federations.describe_all():
            bal = (await NoteWallet(self._parts.db, fed["federation_id"], self._parts.clock).balance()).value
            total += bal
            feds.append({"federation_id": fed["federation_id"], "name": fed["name"], "ecash_msat": bal})
        return {
            "lightning_spendable_msat": liq.spendable.value,
            "lightning_receivable_msat": liq.receivable.value,
            "onchain_sat": liq.onchain_sat,
            "ecash_total_msat": total,
            "federations": feds,
        }

    async def ecash_send(
        self, federation_id: str, amount_msat: object, request_id: object = None
    ) -> dict[str, Any]:
        """Take the gateway's ecash out of a federation as notes (`fedimint-ecash-send`), with what
        the federation took for making them (`fee_msat`). The same `request_id` again returns the
        same notes and spends nothing more."""
        fid = parse.federation_id(federation_id)
        amount = parse.msat(amount_msat, "amount_msat", low=1)
        if request_id in (None, ""):  # nobody can retry it: cut short by a crash, the notes come back
            op = f"{VOLATILE_PREFIX}cli-{secrets.token_hex(8)}"
        else:
            op = f"cli-id-{_request_id(request_id)}"
        client = self._parts.federations.client(fid)
        notes = await client.spend_ecash(amount, op)
        return {
            "federation_id": fid.hex,
            "amount_msat": notes.amount.value,
            "fee_msat": notes.fee.value,  # what the federation took, on top, from our other notes
            "notes": notes.notes,
        }

    async def ecash_receive(self, federation_id: str, notes: object) -> dict[str, Any]:
        """Reissue out-of-band notes into the gateway's own (`fedimint-ecash-receive`); notes
        this gateway received before are refused (AlreadyExists) and nothing changes."""
        fid = parse.federation_id(federation_id)
        if not isinstance(notes, str) or not notes.strip():
            raise InvalidInput("notes must be the ecash string")
        client = self._parts.federations.client(fid)
        if (await client.inspect_ecash(notes.strip())).received:
            raise AlreadyExists("these notes were received before (or their receive is finishing)")
        received = await client.receive_ecash(notes.strip())
        return {
            "federation_id": fid.hex,
            "received_msat": received.value,
            "balance_msat": (await client.balance()).value,
        }


def _request_id(value: object) -> str:
    """An operator's idempotency key: 1 to 64 ASCII letters, digits, '-' or '_'."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= 64
        or not all(c.isascii() and (c.isalnum() or c in "-_") for c in value)
    ):
        raise InvalidInput("request_id must be 1 to 64 ASCII letters, digits, '-' or '_'")
    return value
