"""A user of a Fedimint federation: the official Fedimint client (npm WASM build under Node).

A thin layer over ``tests/interop/official_client.OfficialClient`` (which runs the driver) with
the LNv1 calls the demo and the bench make: find a gateway, make an invoice through it and wait
until the ecash is claimed, pay an invoice through it and wait for the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contrib.official_client.driver import OfficialClient

FLOW_TIMEOUT = 120.0
JOIN_TIMEOUT = 60.0
RECEIVE_DONE = frozenset({"claimed", "canceled"})
PAY_DONE = frozenset({"success", "refunded", "failed", "canceled"})


def state_name(state: object) -> str:
    """The name of a client state update: ``"claimed"`` or ``{"success": {...}}`` -> ``"success"``."""
    if isinstance(state, str):
        return state
    if isinstance(state, dict) and state:
        return str(next(iter(state)))
    return ""


@dataclass(frozen=True)
class Invoice:
    """An invoice the client made: the bolt11 and the client's operation id."""

    bolt11: str
    operation_id: str


@dataclass(frozen=True)
class Outcome:
    """How an operation ended: the last state's name and every state seen."""

    final: str
    states: tuple[Any, ...]


class OfficialUser:
    """One joined client (``name``) in a running driver."""

    def __init__(self, client: OfficialClient, name: str = "user") -> None:
        self.client = client
        self.name = name

    @classmethod
    async def start(cls, invite_code: str, name: str = "user") -> OfficialUser:
        """Start a driver and join the federation of ``invite_code`` as a fresh client."""
        client = await OfficialClient.start()
        try:
            await client.join(name, invite_code, timeout=JOIN_TIMEOUT)
        except BaseException:
            await client.close()
            raise
        return cls(client, name)

    async def close(self) -> None:
        """Stop the driver."""
        await self.client.close()

    async def balance(self) -> int:
        """The client's ecash balance, msat."""
        return int(await self.client.rpc_one("", "get_balance", {}, client_name=self.name))

    async def gateway(self, node_id: str) -> dict[str, Any]:
        """The registration of the gateway whose Lightning node is ``node_id`` (cache refreshed)."""
        await self.client.rpc("ln", "update_gateway_cache", client_name=self.name, timeout=FLOW_TIMEOUT)
        listed = await self.client.rpc_one("ln", "list_gateways", client_name=self.name)
        for entry in listed:
            if entry["info"]["node_pub_key"] == node_id:
                return dict(entry["info"])
        raise LookupError(f"gateway {node_id[:16]}… is not in the client's gateway list: {listed}")

    async def invoice(self, gateway: dict[str, Any], amount_msat: int, description: str) -> Invoice:
        """An LNv1 invoice into this client through ``gateway``."""
        created = await self.client.rpc_one(
            "ln",
            "create_bolt11_invoice",
            {
                "amount": amount_msat,
                "description": description,
                "expiry_time": None,
                "extra_meta": {},
                "gateway": gateway,
            },
            client_name=self.name,
            timeout=FLOW_TIMEOUT,
        )
        return Invoice(str(created["invoice"]), str(created["operation_id"]))

    async def received(self, invoice: Invoice) -> Outcome:
        """Follow the receive until the ecash is claimed (or the receive is canceled)."""
        return await self._follow("subscribe_ln_receive", invoice.operation_id, RECEIVE_DONE)

    async def pay(self, gateway: dict[str, Any], bolt11: str) -> Outcome:
        """Pay ``bolt11`` through ``gateway`` and follow it to success, refund or failure."""
        answer = await self.client.rpc_one(
            "ln",
            "pay_bolt11_invoice",
            {"maybe_gateway": gateway, "invoice": bolt11, "extra_meta": {}},
            client_name=self.name,
            timeout=FLOW_TIMEOUT,
        )
        return await self._follow("subscribe_ln_pay", str(answer["payment_type"]["lightning"]), PAY_DONE)

    async def _follow(self, method: str, operation_id: str, done: frozenset[str]) -> Outcome:
        states: list[Any] = []
        for item in await self.client.rpc(
            "ln", method, {"operation_id": operation_id}, client_name=self.name, timeout=FLOW_TIMEOUT
        ):
            states.append(item)
            if state_name(item) in done:
                break
        return Outcome(state_name(states[-1]) if states else "", tuple(states))
