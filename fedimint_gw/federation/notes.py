"""The gateway's notes in one federation, and its crash-safe federation operations.

An adapter moving ecash does it in three persisted steps:
1. `prepare(operation_id, ...)`: in one database transaction, reserve input notes, create
   the change outputs (secrets and blinding factors) and store the federation transaction.
   Calling it again with the same id returns the stored operation unchanged.
2. The adapter submits the stored transaction (federations treat a resubmission of the
   same transaction as the same transaction) and collects signature shares.
3. `complete(...)` marks the inputs spent and stores the new notes, or `abort(...)` (only
   when the federation definitively refused) returns the inputs to the spendable pool.

An operation whose outcome stays unknown is never aborted on a guess: `prepare_conflict`
stores a second transaction spending the same reserved notes (a reissue to the gateway);
once the federation accepted that one, `complete_conflict` retires the first for good.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fedimint_gw.clock import Clock
from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import InsufficientFunds, InvalidInput, NotReady
from fedimint_gw.federation.ecash import Note, PendingOutput, new_outputs, select_notes
from fedimint_gw.store.db import Database


class OperationState(enum.Enum):
    PREPARED = "prepared"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Operation:
    """A stored federation operation."""

    operation_id: str
    kind: str
    state: OperationState
    tx: dict[str, Any]
    outputs: tuple[PendingOutput, ...]
    result: dict[str, Any]


# Builds the federation transaction from the chosen input notes and the change outputs.
TxBuilder = Callable[[Sequence[Note], Sequence[PendingOutput]], dict[str, Any]]


class NoteWallet:
    """Notes and operations of the gateway in one federation, in the gateway's database."""

    def __init__(self, db: Database, federation_id: str, clock: Clock) -> None:
        self._db = db
        self.federation_id = federation_id
        self._clock = clock

    @property
    def db(self) -> Database:
        """The gateway's database (adapters keeping their own notes tables use it)."""
        return self._db

    async def balance(self) -> Msat:
        """Spendable ecash (notes reserved by an unfinished operation do not count)."""
        async with self._db.conn.execute(
            "SELECT COALESCE(SUM(amount_msat), 0) FROM ecash_notes "
            "WHERE federation_id = ? AND state = 'unspent'",
            (self.federation_id,),
        ) as cur:
            row = await cur.fetchone()
        return Msat(int(row[0]) if row else 0)

    async def _reserved(self, conn: Any) -> int:
        async with conn.execute(
            "SELECT COALESCE(SUM(amount_msat), 0) FROM ecash_notes "
            "WHERE federation_id = ? AND state = 'reserved'",
            (self.federation_id,),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def get(self, operation_id: str) -> Operation | None:
        """The stored operation, or None."""
        async with self._db.conn.execute(
            "SELECT * FROM ecash_operations WHERE operation_id = ?", (operation_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return Operation(
            operation_id=row["operation_id"],
            kind=row["kind"],
            state=OperationState(row["state"]),
            tx=json.loads(row["tx_json"]),
            outputs=tuple(PendingOutput.from_dict(o) for o in json.loads(row["outputs_json"])),
            result=json.loads(row["result_json"]),
        )

    async def prepare(
        self, operation_id: str, kind: str, spend: Msat, fee: Msat, receive: Msat, build: TxBuilder
    ) -> Operation:
        """Reserve notes worth `spend + fee`, create outputs for the change plus `receive`.

        `spend` leaves the gateway (a contract output the builder adds); `receive` is ecash
        the transaction pays to the gateway (for example a claimed contract).
        """
        existing = await self.get(operation_id)
        if existing is not None:
            return existing
        need = spend.value + fee.value
        async with self._db.transaction() as conn:
            chosen: list[Note] = []
            if need > receive.value:
                async with conn.execute(
                    "SELECT secret, amount_msat, signature FROM ecash_notes "
                    "WHERE federation_id = ? AND state = 'unspent'",
                    (self.federation_id,),
                ) as cur:
                    rows = await cur.fetchall()
                notes = [Note(r["amount_msat"], r["secret"], r["signature"]) for r in rows]
                try:
                    chosen = select_notes(notes, need - receive.value)
                except ValueError:
                    have = sum(n.amount_msat for n in notes)
                    busy = await self._reserved(conn)
                    if have + busy >= need - receive.value:
                        raise NotReady(
                            f"{busy} msat of the gateway's ecash in federation {self.federation_id[:8]} is "
                            "reserved by operations in flight; retry when they finish"
                        ) from None
                    raise InsufficientFunds(
                        f"the gateway holds {have} msat of ecash in federation {self.federation_id[:8]}, "
                        f"{need - receive.value} msat needed"
                    ) from None
            change = sum(n.amount_msat for n in chosen) + receive.value - need
            outputs = new_outputs(change)
            for note in chosen:
                await conn.execute(
                    "UPDATE ecash_notes SET state = 'reserved', operation_id = ? WHERE secret = ?",
                    (operation_id, note.secret),
                )
            await self._insert_operation(conn, operation_id, kind, build(chosen, outputs), outputs, {})
        return await self._stored(operation_id)

    async def prepare_conflict(
        self, operation_id: str, target_id: str, kind: str, fee: Msat, build: TxBuilder
    ) -> Operation:
        """Store a transaction spending exactly the notes `target_id` reserved, back to the
        gateway (their total minus `fee`), and mark the target as superseded by it, so no
        one resubmits the target. The notes stay reserved by the target until one of the two
        is accepted. Calling it again returns the stored operation unchanged."""
        existing = await self.get(operation_id)
        if existing is not None:
            return existing
        async with self._db.transaction() as conn:
            async with conn.execute(
                "SELECT state FROM ecash_operations WHERE operation_id = ?", (target_id,)
            ) as cur:
                row = await cur.fetchone()
            if row is None or row["state"] != OperationState.PREPARED.value:
                raise InvalidInput(f"operation {target_id!r} is not waiting for an outcome")
            async with conn.execute(
                "SELECT secret, amount_msat, signature FROM ecash_notes "
                "WHERE operation_id = ? AND state = 'reserved'",
                (target_id,),
            ) as cur:
                notes = [Note(r["amount_msat"], r["secret"], r["signature"]) for r in await cur.fetchall()]
            total = sum(n.amount_msat for n in notes)
            if not notes or total < fee.value:
                raise InsufficientFunds(
                    f"operation {target_id!r} reserved {total} msat, too little to pay the {fee} fee "
                    "of a conflicting transaction"
                )
            outputs = new_outputs(total - fee.value)
            result = {"conflicts_with": target_id}
            await self._insert_operation(conn, operation_id, kind, build(notes, outputs), outputs, result)
            await conn.execute(
                "UPDATE ecash_operations SET result_json = ?, updated_at = ? WHERE operation_id = ?",
                (json.dumps({"superseded_by": operation_id}), self._clock.now(), target_id),
            )
        return await self._stored(operation_id)

    async def complete_conflict(
        self, operation_id: str, target_id: str, notes: Sequence[Note], result: dict[str, Any]
    ) -> None:
        """The federation accepted the conflicting transaction: the target's notes are spent,
        the target failed for good, the new notes stored (idempotent)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE ecash_notes SET state = 'spent' WHERE operation_id = ? AND state = 'reserved'",
                (target_id,),
            )
            reason = {
                "error": "abandoned: a conflicting transaction spent its inputs",
                "superseded_by": operation_id,
            }
            await conn.execute(
                "UPDATE ecash_operations SET state = 'failed', result_json = ?, updated_at = ? "
                "WHERE operation_id = ? AND state = 'prepared'",
                (json.dumps(reason, sort_keys=True), self._clock.now(), target_id),
            )
            await self._insert_notes(conn, notes)
            await conn.execute(
                "UPDATE ecash_operations SET state = 'done', result_json = ?, updated_at = ? "
                "WHERE operation_id = ?",
                (json.dumps(result, sort_keys=True), self._clock.now(), operation_id),
            )

    async def _stored(self, operation_id: str) -> Operation:
        op = await self.get(operation_id)
        if op is None:
            raise RuntimeError("operation vanished after insert")
        return op

    async def _insert_operation(
        self,
        conn: Any,
        operation_id: str,
        kind: str,
        tx: dict[str, Any],
        outputs: Sequence[PendingOutput],
        result: dict[str, Any],
    ) -> None:
        now = self._clock.now()
        await conn.execute(
            "INSERT INTO ecash_operations (operation_id, federation_id, kind, state, tx_json, "
            "outputs_json, result_json, created_at, updated_at) VALUES (?, ?, ?, 'prepared', ?, ?, ?, ?, ?)",
            (
                operation_id,
                self.federation_id,
                kind,
                json.dumps(tx, sort_keys=True),
                json.dumps([o.to_dict() for o in outputs]),
                json.dumps(result, sort_keys=True),
                now,
                now,
            ),
        )

    async def complete(self, operation_id: str, notes: Sequence[Note], result: dict[str, Any]) -> None:
        """The federation accepted: inputs spent, new notes stored (idempotent)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE ecash_notes SET state = 'spent' WHERE operation_id = ? AND state = 'reserved'",
                (operation_id,),
            )
            await self._insert_notes(conn, notes)
            await conn.execute(
                "UPDATE ecash_operations SET state = 'done', result_json = ?, updated_at = ? "
                "WHERE operation_id = ?",
                (json.dumps(result, sort_keys=True), self._clock.now(), operation_id),
            )

    async def note_accepted(self, operation_id: str, result: dict[str, Any]) -> None:
        """A threshold accepted the operation's transaction but its notes are not finished yet:
        store `result` (with the key `accepted`) so a restart finishes them without asking the
        payment flow again. The operation stays prepared (its inputs reserved) until `complete`."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE ecash_operations SET result_json = ?, updated_at = ? "
                "WHERE operation_id = ? AND state = 'prepared'",
                (json.dumps(result, sort_keys=True), self._clock.now(), operation_id),
            )

    async def abort(self, operation_id: str, reason: str, spent: Sequence[str] = ()) -> None:
        """The federation refused the transaction: release the reserved inputs, except the notes
        in `spent` (secrets the federation says were spent already), which are marked spent so
        no later operation picks them again."""
        async with self._db.transaction() as conn:
            for secret in spent:
                await conn.execute(
                    "UPDATE ecash_notes SET state = 'spent' WHERE secret = ? AND operation_id = ?",
                    (secret, operation_id),
                )
            await conn.execute(
                "UPDATE ecash_notes SET state = 'unspent', operation_id = NULL "
                "WHERE operation_id = ? AND state = 'reserved'",
                (operation_id,),
            )
            await conn.execute(
                "UPDATE ecash_operations SET state = 'failed', result_json = ?, updated_at = ? "
                "WHERE operation_id = ?",
                (json.dumps({"error": reason}), self._clock.now(), operation_id),
            )

    async def add_notes(self, notes: Sequence[Note]) -> None:
        """Store notes obtained outside an operation (idempotent by secret)."""
        async with self._db.transaction() as conn:
            await self._insert_notes(conn, notes)

    async def unfinished(self) -> list[Operation]:
        """Operations prepared but neither completed nor aborted (to resume at start)."""
        async with self._db.conn.execute(
            "SELECT operation_id FROM ecash_operations WHERE federation_id = ? AND state = 'prepared'",
            (self.federation_id,),
        ) as cur:
            rows = await cur.fetchall()
        ops = [await self.get(r[0]) for r in rows]
        return [op for op in ops if op is not None]

    async def _insert_notes(self, conn: Any, notes: Sequence[Note]) -> None:
        now = self._clock.now()
        for note in notes:
            await conn.execute(
                "INSERT OR IGNORE INTO ecash_notes (secret, federation_id, amount_msat, signature, state, "
                "created_at) VALUES (?, ?, ?, ?, 'unspent', ?)",
                (note.secret, self.federation_id, note.amount_msat, note.signature, now),
            )
