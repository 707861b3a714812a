"""What the federations took for a payment's own transactions, kept next to the fee charged.

`fee_msat` is the fee the gateway charged; `data["federation_fee_msat"]` is what the
federations' fees cost the gateway's ecash for the same payment (devfed: a flat transaction
fee; Fedimint: mint fees per note of inputs and change, plus the Lightning module's contract
fees):
- a receive (and a swap's target side): its funding, beyond the contract (`funding_fee`);
- a send (and a swap's or forward's source side): its claim, the contract's amount less the
  ecash it gave (`claim_fee`);
- a funded contract refunded to the gateway (the receiver's preimage was invalid): its funding
  and its refund (`refund_fee`).
A cancellation costs the gateway nothing (no notes of its own move). The margin is
`fee_msat - federation_fee_msat`; a payment whose margin is negative lost money and says so in
the log (`warn_if_short`) and in the metrics (`fedimint_gw_fee_shortfalls`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import GatewayError
from fedimint_gw.federation.client import FederationClient, IncomingRequest
from fedimint_gw.store import payments as repo

FEDERATION_FEE = repo.FEDERATION_FEE
CONTRACT_AMOUNT = "contract_amount_msat"  # a send's contract: what the claim starts from

Log = Callable[[str, str], None]


async def funding_fee(
    client: FederationClient, request: IncomingRequest, operation_id: str, log: Log
) -> dict[str, Any]:
    """`{"federation_fee_msat": n}` for a funding just accepted (empty, and a warn, when the
    adapter cannot tell: the payment goes on; its record then lacks the figure)."""
    try:
        fee = await client.funding_fee(request, operation_id)
    except Exception as exc:  # best effort: it must never keep the funded state from being written
        why = exc.message if isinstance(exc, GatewayError) else repr(exc)
        log(f"payment {operation_id}: what the federation took for the funding is unknown: {why}", "warn")
        return {}
    return {FEDERATION_FEE: fee.value}


def contract_data(amount: Msat) -> dict[str, Any]:
    """What a send's record keeps so its claim's fee can be known: the contract's amount."""
    return {CONTRACT_AMOUNT: amount.value}


def claim_fee(rec: repo.PaymentRecord, gained: Msat) -> dict[str, Any]:
    """The record's federation fee plus its claim's (the contract less what the claim gave):
    computed from the record before the claim's write, so a replayed claim adds it once."""
    contract = rec.data.get(CONTRACT_AMOUNT)
    if contract is None:  # recorded by an older version: the contract's amount is unknown
        return {}
    before = int(rec.data.get(FEDERATION_FEE, 0) or 0)
    return {FEDERATION_FEE: before + max(0, int(contract) - gained.value)}


def refund_fee(rec: repo.PaymentRecord, contract: Msat, refunded: Msat | None) -> dict[str, Any]:
    """The record's federation fee plus its refund's (a funded contract the gateway took back:
    the contract less what the refund gave), when the adapter said what it gave."""
    if refunded is None:
        return {}
    before = int(rec.data.get(FEDERATION_FEE, 0) or 0)
    return {FEDERATION_FEE: before + max(0, contract.value - refunded.value)}


def margin_if_paid(rec: repo.PaymentRecord) -> int | None:
    """Fee charged less what the federations took, as if the payment succeeds (None when the
    figure is not recorded): a receive's funding is checked before it succeeds. What a payment
    really netted (nothing earned unless it succeeded) is `fedimint-payments`' `margin_msat`."""
    took = rec.federation_fee_msat
    return None if took is None else rec.fee_msat - took


def warn_if_short(rec: repo.PaymentRecord, log: Log) -> None:
    """Say loudly when what the federations took is more than the fee charged: money lost."""
    left = margin_if_paid(rec)
    if left is not None and left < 0:
        log(
            f"{rec.kind.value} {rec.payment_id}: the federation took {rec.federation_fee_msat} msat, "
            f"more than the {rec.fee_msat} msat fee charged: a loss of {-left} msat; raise this "
            "federation's fees (fedimint-setfees) above its per-payment cost",
            "warn",
        )
