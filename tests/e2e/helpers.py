"""Small helpers shared by the e2e tests (the user side of each flow)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from coincurve import PrivateKey

from contrib.devfed import wallet_ln
from contrib.devfed.wallet import Wallet
from fedimint_gw.domain.amount import FeeSchedule
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.lightning import bolt11
from fedimint_gw.services import context as context_module


class Crash(BaseException):
    """Stands for the plugin process dying where the test says (a BaseException, so no handler
    in the gateway catches it)."""


DEFAULT_FEES = FeeSchedule(2000, 3000)  # the gateway's default fee schedule


def default_fee(amount: int) -> int:
    """The gateway's fee for `amount` under its default schedule (2000 msat + 3000 ppm), rounded down."""
    return 2000 + amount * 3000 // 1_000_000


def external_invoice(payment_hash: str, amount_msat: int) -> str:
    """A bolt11 for `payment_hash` from an outside payee (a fresh key, no route hints): paying
    it goes out over Lightning."""
    content = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=amount_msat,
        timestamp=int(time.time()),
        payment_hash=bytes.fromhex(payment_hash),
        payment_secret=secrets.token_bytes(32),
        description="external",
        features=bolt11.DEFAULT_FEATURES,
    )
    return bolt11.sign_with_key(bolt11.encode_unsigned(content), PrivateKey())


def crash_after_writing(monkeypatch: pytest.MonkeyPatch, kind: PaymentKind, state: PaymentState) -> None:
    """The plugin process dies (Crash) right after `advance` wrote `state` on a `kind` record;
    `monkeypatch.undo()` brings the process back."""
    real_advance = context_module.ServiceContext.advance

    async def advance_then_crash(self: Any, rec: Any, new_state: PaymentState, **changes: Any) -> Any:
        new = await real_advance(self, rec, new_state, **changes)
        if rec.kind is kind and new_state is state:
            raise Crash()
        return new

    monkeypatch.setattr(context_module.ServiceContext, "advance", advance_then_crash)


async def claim_receive(wallet: Wallet, receive: wallet_ln.Receive) -> int:
    """The receiver claims its funded incoming contract (v1 offer or v2 contract)."""
    return await wallet_ln.claim_receive(wallet, wallet_ln.claim_id(receive))


def route_hop(invoice: str) -> bolt11.RouteHop:
    """The last hop of the invoice's first route hint."""
    return bolt11.decode(invoice).route_hints[0][-1]
