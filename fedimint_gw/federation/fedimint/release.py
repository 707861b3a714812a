"""Abandoning a funding whose outcome is unknown, without guessing (money rule 2).

A funding (`module_ops.prepare_fund`) may have been submitted when its answer was lost. To give it
up, the gateway spends the same reserved notes into fresh notes of its own (a **release**):
- the release is accepted by a threshold: the funding can never be accepted now (its inputs are
  spent); our notes are the release's outputs and the funding is marked failed -> `RELEASED`;
- the release is refused by a threshold: something spent those notes first; if a threshold says
  the funding was accepted -> `FUNDED` (the caller finishes it); otherwise -> `UNKNOWN` (ask again).
The release is stored before it is sent (its outputs are derived), so a crash replays it.
"""

from __future__ import annotations

import enum
import secrets

from fedimint_gw.errors import FederationUnreachable, InsufficientFunds
from fedimint_gw.federation.fedimint.module_ops import mint_in_item, mint_out_item
from fedimint_gw.federation.fedimint.notes import FedimintNotes, MintOperation, MintOpState
from fedimint_gw.fedimint.encoding import Err
from fedimint_gw.fedimint.errors import FedimintProtocolError, ThresholdNotReached
from fedimint_gw.fedimint.mint_api import await_transaction, collect_notes, submit_transaction
from fedimint_gw.fedimint.mint_client import balanced_outputs, fees_of
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import Transaction

RELEASE = "fm_module_release"
RELEASE_SUFFIX = ":release"


class ReleaseOutcome(enum.Enum):
    RELEASED = "released"  # the funding can never happen; our notes are back
    FUNDED = "funded"  # the funding was accepted
    UNKNOWN = "unknown"  # neither could be shown yet


async def _prepare(notes: FedimintNotes, fund: MintOperation) -> MintOperation:
    release_id = fund.operation_id + RELEASE_SUFFIX
    existing = await notes.get(release_id)
    if existing is not None:
        return existing
    async with notes.db.transaction() as conn:
        pool = await notes.reserved_notes(conn, fund.operation_id)
        if not pool:
            raise InsufficientFunds(f"funding {fund.operation_id} holds no reserved notes to release")
        total = sum(a for a, _ in pool) - fees_of(notes.config.fee_consensus, [a for a, _ in pool])
        amounts = balanced_outputs(
            total, notes.config.fee_consensus, notes.config.denominations, notes.overpay
        )
        if not amounts:
            raise InsufficientFunds("the reserved notes are worth too little to reissue")
        outputs = notes.derive_outputs(release_id, amounts)
        tx = Transaction.signed(
            [mint_in_item(notes, a, n) for a, n in pool],
            [mint_out_item(notes, o) for o in outputs],
            secrets.token_bytes(8),
            [n.spend_key for _, n in pool],
        )
        await notes.insert_op(conn, release_id, RELEASE, tx, outputs, 0)
    return await notes.must_get(release_id)


async def release_funding(
    notes: FedimintNotes, api: FederationApi, fund: MintOperation, accept_timeout: float = 5.0
) -> ReleaseOutcome:
    """Try to make a prepared funding impossible; see the module docstring. `accept_timeout`:
    how long to wait for the guardians to say whether the funding went through, when the release
    was refused (its notes already spent)."""
    release = await _prepare(notes, fund)
    if release.state is not MintOpState.DONE:
        try:
            outcome = await submit_transaction(api, release.tx)
        except FedimintProtocolError as exc:
            raise FederationUnreachable(
                f"release of {fund.operation_id} not confirmed: {exc.message}"
            ) from None
        if isinstance(outcome.result, Err):
            try:
                await await_transaction(api, fund.tx.txid(), timeout=accept_timeout)
            except ThresholdNotReached:
                return ReleaseOutcome.UNKNOWN
            except FedimintProtocolError as exc:
                raise FederationUnreachable(
                    f"cannot tell whether {fund.operation_id} went through: {exc.message}"
                ) from None
            return ReleaseOutcome.FUNDED
        try:
            finished = await collect_notes(
                api, notes.mint_instance_id, notes.config, release.tx.txid(), release.outputs
            )
        except FedimintProtocolError as exc:
            raise FederationUnreachable(f"notes of the release not issued yet: {exc.message}") from None
        await notes.complete_release(release.operation_id, fund.operation_id, finished)
    await notes.abort(fund.operation_id, "abandoned: its notes were spent by a release")
    return ReleaseOutcome.RELEASED
