from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import InsufficientFunds, InvalidInput
from fedimint_gw.federation.ecash import Note, PendingOutput
from fedimint_gw.federation.notes import NoteWallet, OperationState
from fedimint_gw.store.db import Database

FED = "ab" * 32


class FixedClock:
    def now(self) -> int:
        return 1_700_000_000


def build(inputs: Sequence[Note], outputs: Sequence[PendingOutput]) -> dict[str, Any]:
    return {"inputs": [n.to_input() for n in inputs], "outputs": [o.to_dict() for o in outputs]}


@pytest.fixture
async def wallet(tmp_path: Path) -> AsyncIterator[NoteWallet]:
    db = await Database.open(str(tmp_path / "gw.db"))
    w = NoteWallet(db, FED, FixedClock())
    await w.add_notes([Note(d, f"{i:064x}", "02" + "11" * 32) for i, d in enumerate([1, 4, 8, 64])])
    yield w
    await db.close()


async def test_prepare_reserves_and_is_idempotent(wallet: NoteWallet) -> None:
    assert await wallet.balance() == Msat(77)
    op = await wallet.prepare("op1", "fund", Msat(10), Msat(1), Msat(0), build)
    spent = sum(int(i["amount_msat"]) for i in op.tx["inputs"])
    assert spent >= 11
    assert sum(o.amount_msat for o in op.outputs) == spent - 11  # change
    assert await wallet.balance() == Msat(77 - spent)
    again = await wallet.prepare("op1", "fund", Msat(10), Msat(1), Msat(0), build)
    assert again == op and await wallet.balance() == Msat(77 - spent)


async def test_insufficient_funds_changes_nothing(wallet: NoteWallet) -> None:
    with pytest.raises(InsufficientFunds, match="77 msat"):
        await wallet.prepare("op2", "fund", Msat(100), Msat(0), Msat(0), build)
    assert await wallet.balance() == Msat(77)
    assert await wallet.get("op2") is None


async def test_complete_spends_inputs_and_adds_change(wallet: NoteWallet) -> None:
    op = await wallet.prepare("op3", "fund", Msat(70), Msat(0), Msat(0), build)
    change = [Note(o.amount_msat, o.secret, "03" + "22" * 32) for o in op.outputs]
    await wallet.complete("op3", change, {"txid": "t"})
    await wallet.complete("op3", change, {"txid": "t"})  # replay is harmless
    assert await wallet.balance() == Msat(7)
    done = await wallet.get("op3")
    assert done is not None and done.state is OperationState.DONE and done.result == {"txid": "t"}
    assert await wallet.unfinished() == []


async def test_abort_releases_reserved_notes(wallet: NoteWallet) -> None:
    await wallet.prepare("op4", "fund", Msat(9), Msat(0), Msat(0), build)
    assert len(await wallet.unfinished()) == 1
    await wallet.abort("op4", "rejected")
    assert await wallet.balance() == Msat(77)
    op = await wallet.get("op4")
    assert op is not None and op.state is OperationState.FAILED


async def test_receive_only_operation_needs_no_notes(wallet: NoteWallet) -> None:
    op = await wallet.prepare("op5", "claim", Msat(0), Msat(2), Msat(50), build)
    assert op.tx["inputs"] == [] and sum(o.amount_msat for o in op.outputs) == 48


async def test_a_conflict_spends_exactly_the_target_notes_and_retires_the_target(wallet: NoteWallet) -> None:
    target = await wallet.prepare("fund:x", "fund", Msat(70), Msat(0), Msat(0), build)
    reserved = sorted(i["secret"] for i in target.tx["inputs"])
    conflict = await wallet.prepare_conflict("unfund:x", "fund:x", "abandon", Msat(2), build)
    assert sorted(i["secret"] for i in conflict.tx["inputs"]) == reserved
    assert (
        sum(o.amount_msat for o in conflict.outputs)
        == sum(int(i["amount_msat"]) for i in target.tx["inputs"]) - 2
    )
    assert await wallet.prepare_conflict("unfund:x", "fund:x", "abandon", Msat(2), build) == conflict
    superseded = await wallet.get("fund:x")
    assert superseded is not None and superseded.result == {"superseded_by": "unfund:x"}
    assert superseded.state is OperationState.PREPARED  # it may still land until the conflict is accepted
    assert await wallet.balance() == Msat(77 - 72)  # still reserved
    notes = [Note(o.amount_msat, o.secret, "03" + "22" * 32) for o in conflict.outputs]
    await wallet.complete_conflict("unfund:x", "fund:x", notes, {"txid": "c"})
    await wallet.complete_conflict("unfund:x", "fund:x", notes, {"txid": "c"})  # replay is harmless
    assert await wallet.balance() == Msat(77 - 2)
    retired = await wallet.get("fund:x")
    assert retired is not None and retired.state is OperationState.FAILED
    assert await wallet.unfinished() == []


async def test_a_conflict_needs_a_pending_target_that_can_pay_the_fee(wallet: NoteWallet) -> None:
    with pytest.raises(InvalidInput):
        await wallet.prepare_conflict("unfund:none", "fund:none", "abandon", Msat(0), build)
    await wallet.prepare("fund:small", "fund", Msat(1), Msat(0), Msat(0), build)
    with pytest.raises(InsufficientFunds):
        await wallet.prepare_conflict("unfund:small", "fund:small", "abandon", Msat(5), build)
    assert await wallet.get("unfund:small") is None and await wallet.balance() == Msat(76)
