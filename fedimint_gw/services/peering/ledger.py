"""Ledger checks with peers (docs/peer-protocol.md §6): signed statements and ledger comparisons.

Both sides sign a statement of the link's ledger; when the statements disagree, both exchange
their entries and compute the difference (entries still in flight are not differences). A
mismatch is logged at error level and kept on the peer's record for `fedimint-peer-list`.
The ledger math itself is in fedimint_gw.peer.ledger; this module does the I/O around it.
"""

from __future__ import annotations

from typing import Any, Protocol

from fedimint_gw.errors import InvalidInput, PeerError
from fedimint_gw.peer import ledger, wire
from fedimint_gw.peer.client import Link, PeerClient
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.store import peers as repo


class Identity(Protocol):
    """Who we are on the peer links, and how to reach an active peer (PeerService)."""

    @property
    def key(self) -> wire.PeerKey: ...

    @property
    def node_id(self) -> str: ...

    @property
    def client(self) -> PeerClient: ...

    async def link(self, node_id: str) -> Link: ...


class PeerLedger:
    """Statements of each link's ledger, and comparisons of ours with the peer's."""

    def __init__(self, ctx: ServiceContext, me: Identity) -> None:
        self._ctx = ctx
        self._me = me

    async def statement(self, node_id: str) -> dict[str, Any]:
        """Our signed statement of the link's ledger."""
        entries = await repo.entries(self._ctx.db.conn, node_id)
        return ledger.statement(self._me.key, self._me.node_id, node_id, entries, self._ctx.clock.now())

    async def keep_statement(self, node_id: str, stmt: object) -> None:
        """Persist the peer's signed statement (evidence of its view) if it verifies."""
        rec = await repo.get(self._ctx.db.conn, node_id)
        if rec is None or rec.peer_key is None or not isinstance(stmt, dict):
            return
        if ledger.statement_valid(stmt, rec.peer_key, node_id, self._me.node_id):
            async with self._ctx.db.transaction() as conn:  # that field only: nothing else is undone
                await repo.record_statement(conn, node_id, stmt, self._ctx.clock.now())

    async def check(self, node_id: str) -> dict[str, Any]:
        """Compare ledgers with a peer; a mismatch is logged and shown in fedimint-peer-list."""
        link = await self._me.link(node_id)
        answer = await self._me.client.call(link, "ledger", {"statement": await self.statement(node_id)})
        theirs = answer.get("statement")
        if not isinstance(theirs, dict) or not ledger.statement_valid(
            theirs, str(link.peer_key), node_id, self._me.node_id
        ):
            raise PeerError("the peer's ledger statement does not verify")
        ours = await repo.entries(self._ctx.db.conn, node_id)
        if ledger.agrees(ours, self._me.node_id, node_id, theirs):
            result = ledger.Comparison(True)
        else:
            body = {
                "statement": await self.statement(node_id),
                "want_entries": True,
                "entries": _entries_json(ours),
            }
            answer = await self._me.client.call(link, "ledger", body)
            result = ledger.compare(ours, _entries_of(answer.get("entries")), await self._in_flight(node_id))
        await self._record_comparison(node_id, result, theirs)
        return {
            "node_id": node_id,
            "agreed": result.agreed,
            **({} if result.agreed else {"detail": result.describe()}),
        }

    async def on_ledger(self, peer: repo.PeerRecord, body: dict[str, Any]) -> dict[str, Any]:
        """Answer a peer's ledger comparison (and compare on our side when it sent its entries)."""
        theirs = body.get("statement")
        if not isinstance(theirs, dict) or not ledger.statement_valid(
            theirs, str(peer.peer_key), peer.node_id, self._me.node_id
        ):
            raise InvalidInput("the statement does not verify")
        ours = await repo.entries(self._ctx.db.conn, peer.node_id)
        agreed = ledger.agrees(ours, self._me.node_id, peer.node_id, theirs)
        answer: dict[str, Any] = {"statement": await self.statement(peer.node_id), "agreed": agreed}
        if body.get("want_entries") is True:
            answer["entries"] = _entries_json(ours)
            if "entries" in body:
                result = ledger.compare(
                    ours, _entries_of(body.get("entries")), await self._in_flight(peer.node_id)
                )
                await self._record_comparison(peer.node_id, result, theirs)
        elif agreed:
            await self._record_comparison(peer.node_id, ledger.Comparison(True), theirs)
        return answer

    async def _record_comparison(
        self, node_id: str, result: ledger.Comparison, theirs: dict[str, Any]
    ) -> None:
        if not result.agreed:
            self._ctx.log(f"peer {node_id[:16]}: LEDGER MISMATCH: {result.describe()}", "error")
        async with self._ctx.db.transaction() as conn:  # those fields only: nothing else is undone
            await repo.record_ledger_check(
                conn,
                node_id,
                "agreed" if result.agreed else "mismatch",
                None if result.agreed else result.describe(),
                theirs,
                self._ctx.clock.now(),
            )

    async def _in_flight(self, node_id: str) -> set[str]:
        conn = self._ctx.db.conn
        ids = {
            **await repo.forwards_in_flight(conn, node_id, "in"),
            **await repo.forwards_in_flight(conn, node_id, "out"),
        }
        return {f"forward:{i}" for i in ids}


def _entries_json(entries: list[ledger.Entry]) -> list[dict[str, Any]]:
    return [{"id": e.entry_id, "delta_msat": e.delta_msat} for e in entries]


def _entries_of(raw: object) -> list[ledger.Entry]:
    if not isinstance(raw, list):
        raise InvalidInput("entries must be a list")
    out = []
    for item in raw:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("id"), str)
            or not isinstance(item.get("delta_msat"), int)
        ):
            raise InvalidInput("each entry must be {id, delta_msat}")
        out.append(ledger.Entry(item["id"], item["delta_msat"]))
    return out
