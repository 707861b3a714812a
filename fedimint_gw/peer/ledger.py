"""Ledger math of one peer link (docs/peer-protocol.md §6): pure functions, no I/O.

Every delta is from the local gateway's point of view: positive means the peer owes us more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fedimint_gw.peer.wire import PeerKey, statement_text, verify


@dataclass(frozen=True)
class Entry:
    """One ledger entry: `forward:<id>` or `settlement:<id>`, and its delta in msat."""

    entry_id: str
    delta_msat: int


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing our ledger with the peer's."""

    agreed: bool
    missing_here: tuple[str, ...] = ()  # entries the peer has and we do not
    missing_there: tuple[str, ...] = ()  # entries we have and the peer does not
    differing: tuple[str, ...] = ()  # same entry, different amount

    def describe(self) -> str:
        parts = []
        for name, ids in (
            ("missing here", self.missing_here),
            ("missing at the peer", self.missing_there),
            ("different amounts", self.differing),
        ):
            if ids:
                parts.append(f"{name}: {', '.join(ids)}")
        return "; ".join(parts) or "balances differ"


def balance(entries: Iterable[Entry]) -> int:
    return sum(e.delta_msat for e in entries)


def digest(entries: Iterable[Entry], me: str, peer: str) -> str:
    """sha256 over the entries as seen by the lower node id, sorted by id: equal on both sides."""
    sign = 1 if me < peer else -1
    lines = sorted(f"{e.entry_id}:{sign * e.delta_msat}\n" for e in entries)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def statement(key: PeerKey, me: str, peer: str, entries: list[Entry], now: int) -> dict[str, Any]:
    """Our signed statement of the link's ledger."""
    body: dict[str, Any] = {
        "from": me,
        "to": peer,
        "balance_msat": balance(entries),
        "entries": len(entries),
        "digest": digest(entries, me, peer),
        "time": now,
    }
    body["sig"] = key.sign(statement_text(body))
    return body


def statement_valid(stmt: Mapping[str, Any], peer_key: str, peer: str, me: str) -> bool:
    """Whether `stmt` is the peer's signed statement about its link with us."""
    sig = stmt.get("sig")
    return (
        stmt.get("from") == peer
        and stmt.get("to") == me
        and isinstance(stmt.get("balance_msat"), int)
        and isinstance(sig, str)
        and verify(peer_key, statement_text(stmt), sig)
    )


def agrees(ours: list[Entry], me: str, peer: str, theirs: Mapping[str, Any]) -> bool:
    """Whether the peer's statement describes the same ledger as ours."""
    return (
        theirs.get("digest") == digest(ours, me, peer)
        and theirs.get("entries") == len(ours)
        and theirs.get("balance_msat") == -balance(ours)
    )


def compare(ours: list[Entry], theirs: list[Entry], in_flight: set[str]) -> Comparison:
    """Entry by entry; `theirs` as the peer sees them. Entries in flight are not differences."""
    mine = {e.entry_id: e.delta_msat for e in ours}
    other = {e.entry_id: -e.delta_msat for e in theirs}  # to our point of view
    here = tuple(sorted(i for i in other if i not in mine and i not in in_flight))
    there = tuple(sorted(i for i in mine if i not in other and i not in in_flight))
    diff = tuple(sorted(i for i in mine if i in other and mine[i] != other[i]))
    return Comparison(not (here or there or diff), here, there, diff)


def may_borrow(balance_msat: int, pending_out: int, amount: int, granted_to_us: int) -> bool:
    """Whether we may forward `amount` to a peer: our debt stays within what it grants us."""
    return -balance_msat + pending_out + amount <= granted_to_us


def may_lend(balance_msat: int, pending_in: int, amount: int, granted_to_peer: int) -> bool:
    """Whether we accept a forward of `amount` from a peer: its debt stays within what we grant."""
    return balance_msat + pending_in + amount <= granted_to_peer


def settlement_due(balance_msat: int, granted_to_us: int) -> int:
    """What we should settle now: our whole debt once it reaches half the credit granted to us."""
    debt = -balance_msat
    if debt > 0 and debt * 2 >= granted_to_us:
        return debt
    return 0
