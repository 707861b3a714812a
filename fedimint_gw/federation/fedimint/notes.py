"""The gateway's mint notes in one Fedimint federation, and its crash-safe mint operations.

Same tables and the same discipline as `federation/notes.py` (the devfed wallet), with Fedimint's
notes: `ecash_notes.secret` is the note's spend key (hex), `signature` its G1 signature (hex).
An operation moves notes in three persisted steps:
1. `prepare_*`: in one database transaction, choose inputs (reserving ours), make the output
   secrets (derived from the root secret, the operation id and the output's position) and store
   the signed transaction. Called again with the same operation id it returns what is stored.
2. The caller submits the stored transaction (resubmitting the same bytes is harmless: the
   federation answers the same outcome) and collects signature shares.
3. `complete` marks our inputs spent and stores the change notes, or `abort` (only on a
   threshold-agreed refusal) releases the reserved inputs.
A spend hands out fresh notes made for it (the `send` outputs); their secrets live in the
operation until `complete` turns them into the `OOBNotes` the caller gives away.
"""

from __future__ import annotations

import enum
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fedimint_gw.clock import Clock
from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import InsufficientFunds, InvalidInput, NotReady
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.fedimint.lnv2.transactions import build as build_module_tx
from fedimint_gw.fedimint.lnv2.transactions import claim_outputs, note_input, note_output, plan_funding
from fedimint_gw.fedimint.mint_client import (
    FinishedNote,
    NoteFees,
    NoteSecrets,
    build_transaction,
    check_note,
    derive_note_secrets,
    note_fees,
    plan_reissue,
    plan_split,
)
from fedimint_gw.fedimint.mint_errors import Unbalanceable
from fedimint_gw.fedimint.mint_types import MintClientConfig, SpendableNote
from fedimint_gw.fedimint.oob import OOBNotes
from fedimint_gw.fedimint.transaction import ModuleItem, Transaction
from fedimint_gw.store.db import Database

RECEIVE = "fm_receive"
SPEND = "fm_spend"


class MintOpState(enum.Enum):
    PREPARED = "prepared"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class MintOperation:
    """A stored mint operation: its transaction, the secrets of its outputs and its result."""

    operation_id: str
    kind: str
    state: MintOpState
    tx: Transaction
    outputs: tuple[NoteSecrets, ...]
    send_count: int
    """The first `send_count` outputs are handed out (a spend); the rest come back to us."""
    result: dict[str, Any]

    @property
    def change(self) -> tuple[NoteSecrets, ...]:
        return self.outputs[self.send_count :]


def _secrets_json(items: Sequence[NoteSecrets]) -> str:
    return json.dumps(
        [
            {"amount": s.amount, "spend_key": s.spend_key.hex(), "blinding_key": str(s.blinding_key)}
            for s in items
        ]
    )


def _secrets_from(text: str) -> tuple[NoteSecrets, ...]:
    return tuple(
        NoteSecrets(int(d["amount"]), bytes.fromhex(d["spend_key"]), int(d["blinding_key"]))
        for d in json.loads(text)
    )


class FedimintNotes:
    """Mint notes and operations of the gateway in one Fedimint federation."""

    def __init__(
        self,
        db: Database,
        federation_id: FederationId,
        mint_instance_id: int,
        config: MintClientConfig,
        root_secret: bytes,
        clock: Clock,
        *,
        overpay: bool = False,
    ) -> None:
        self._db = db
        self.federation_id = federation_id
        self._fid = federation_id.hex
        self.mint_instance_id = mint_instance_id
        self.config = config
        self._root = root_secret
        self._clock = clock
        self._overpay = overpay

    @property
    def db(self) -> Database:
        return self._db

    @property
    def overpay(self) -> bool:
        """Whether a transaction may leave dust to the federation (core consensus >= 2.1)."""
        return self._overpay

    def note_fees(self, amount: Msat) -> NoteFees:
        """The mint's fees for handing out and reissuing notes worth `amount` (`note_fees`)."""
        return note_fees(amount.value, self.config, self._overpay)

    def reissue_fee(self, oob: OOBNotes) -> Msat:
        """What reissuing exactly these notes into ours costs (all of them when nothing is left)."""
        notes = [(amount, note) for amount, items in sorted(oob.notes.items()) for note in items]
        try:
            return Msat(plan_reissue(notes, self.config, self._overpay).fee_msat)
        except Unbalanceable:
            return Msat(oob.total_msat)

    async def spend_fee(self, operation_id: str) -> Msat:
        """What the mint took for a stored operation of ours: its inputs (our notes it reserved
        or spent) less every note it makes (handed out and change)."""
        op = await self._must_get(operation_id)
        async with self._db.conn.execute(
            "SELECT COALESCE(SUM(amount_msat), 0) FROM ecash_notes "
            "WHERE federation_id = ? AND operation_id = ?",
            (self._fid, operation_id),
        ) as cur:
            row = await cur.fetchone()
        spent = int(row[0]) if row else 0
        return Msat(max(0, spent - sum(o.amount for o in op.outputs)))

    def derive_outputs(self, operation_id: str, amounts: Sequence[int]) -> list[NoteSecrets]:
        """Output secrets of an operation (derived: replays make the same notes)."""
        return self._outputs(operation_id, amounts)

    async def unspent(self, conn: Any) -> list[tuple[int, SpendableNote]]:
        """Our unspent notes (inside the caller's transaction)."""
        async with conn.execute(
            "SELECT secret, amount_msat, signature FROM ecash_notes "
            "WHERE federation_id = ? AND state = 'unspent'",
            (self._fid,),
        ) as cur:
            rows = await cur.fetchall()
        return [
            (int(r["amount_msat"]), SpendableNote(bytes.fromhex(r["signature"]), bytes.fromhex(r["secret"])))
            for r in rows
        ]

    async def reserve(self, conn: Any, operation_id: str, inputs: Sequence[SpendableNote]) -> None:
        """Reserve notes for an operation (inside the caller's transaction)."""
        for note in inputs:
            await conn.execute(
                "UPDATE ecash_notes SET state = 'reserved', operation_id = ? "
                "WHERE secret = ? AND state = 'unspent'",
                (operation_id, note.spend_key.hex()),
            )

    async def reserved_notes(self, conn: Any, operation_id: str) -> list[tuple[int, SpendableNote]]:
        """The notes an operation has reserved (inside the caller's transaction)."""
        async with conn.execute(
            "SELECT secret, amount_msat, signature FROM ecash_notes "
            "WHERE federation_id = ? AND operation_id = ? AND state = 'reserved'",
            (self._fid, operation_id),
        ) as cur:
            rows = await cur.fetchall()
        return [
            (int(r["amount_msat"]), SpendableNote(bytes.fromhex(r["signature"]), bytes.fromhex(r["secret"])))
            for r in rows
        ]

    async def complete_release(self, release_id: str, fund_id: str, finished: Sequence[FinishedNote]) -> None:
        """A release was accepted: the funding's reserved notes are spent, the release's notes ours."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE ecash_notes SET state = 'spent', operation_id = ? WHERE operation_id = ? "
                "AND state = 'reserved'",
                (release_id, fund_id),
            )
        await self.complete(release_id, finished, {"received_msat": sum(n.amount for n in finished)})

    async def exists(self, conn: Any, operation_id: str) -> bool:
        return await self._exists(conn, operation_id)

    async def reserved(self, conn: Any) -> int:
        return await self._reserved(conn)

    async def must_get(self, operation_id: str) -> MintOperation:
        return await self._must_get(operation_id)

    async def insert_op(
        self,
        conn: Any,
        operation_id: str,
        kind: str,
        tx: Transaction,
        outputs: Sequence[NoteSecrets],
        send: int,
    ) -> None:
        await self._insert_op(conn, operation_id, kind, tx, outputs, send)

    async def balance(self) -> Msat:
        """Spendable notes (notes reserved by an unfinished operation do not count): the same
        ecash tables as every family, so the shared wallet's sum."""
        return await NoteWallet(self._db, self._fid, self._clock).balance()

    async def get(self, operation_id: str) -> MintOperation | None:
        """The stored operation, or None."""
        async with self._db.conn.execute(
            "SELECT * FROM ecash_operations WHERE operation_id = ? AND federation_id = ?",
            (operation_id, self._fid),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        tx_data = json.loads(row["tx_json"])
        return MintOperation(
            operation_id=row["operation_id"],
            kind=row["kind"],
            state=MintOpState(row["state"]),
            tx=Transaction.from_hex(tx_data["tx"]),
            outputs=_secrets_from(row["outputs_json"]),
            send_count=int(tx_data["send_count"]),
            result=json.loads(row["result_json"]),
        )

    def _outputs(self, operation_id: str, amounts: Sequence[int]) -> list[NoteSecrets]:
        return [
            derive_note_secrets(self._root, self.federation_id, operation_id, i, a)
            for i, a in enumerate(amounts)
        ]

    async def prepare_receive(self, operation_id: str, oob: OOBNotes) -> MintOperation:
        """Reissue notes received out of band into notes of ours (InvalidInput if they are not
        this federation's notes; nothing is stored then)."""
        existing = await self.get(operation_id)
        if existing is not None:
            return existing
        if oob.federation_id_prefix != self.federation_id.raw[:4]:
            raise InvalidInput("these e-cash notes belong to another federation")
        inputs = [(amount, note) for amount, notes in oob.notes.items() for note in notes]
        for amount, note in inputs:
            check_note(amount, note, self.config)
        plan = plan_reissue(inputs, self.config, overpay=self._overpay)
        outputs = self._outputs(operation_id, plan.outputs)
        tx = build_transaction(self.mint_instance_id, plan.inputs, outputs, secrets.token_bytes(8))
        async with self._db.transaction() as conn:
            if not await self._exists(conn, operation_id):  # a concurrent call may have won
                await self._insert_op(conn, operation_id, RECEIVE, tx, outputs, 0)
        return await self._must_get(operation_id)

    async def prepare_spend(self, operation_id: str, amount: Msat) -> MintOperation:
        """Reserve notes and store a transaction making fresh notes worth exactly `amount` (to
        hand out) plus our change, every fee paid from our notes."""
        existing = await self.get(operation_id)
        if existing is not None:
            return existing
        if amount.value <= 0:
            raise InvalidInput("a spend is of a positive amount")
        async with self._db.transaction() as conn:
            if await self._exists(conn, operation_id):  # a concurrent call won
                return await self._must_get(operation_id)
            async with conn.execute(
                "SELECT secret, amount_msat, signature FROM ecash_notes "
                "WHERE federation_id = ? AND state = 'unspent'",
                (self._fid,),
            ) as cur:
                rows = await cur.fetchall()
            notes = [
                (
                    int(r["amount_msat"]),
                    SpendableNote(bytes.fromhex(r["signature"]), bytes.fromhex(r["secret"])),
                )
                for r in rows
            ]
            try:
                plan = plan_split(notes, amount.value, self.config, overpay=self._overpay)
            except InsufficientFunds:
                if await self._reserved(conn) > 0:
                    raise NotReady(
                        "part of the gateway's notes is reserved by operations in flight; retry when "
                        "they finish"
                    ) from None
                raise
            outputs = self._outputs(operation_id, [*plan.send, *plan.change])
            tx = build_transaction(self.mint_instance_id, plan.inputs, outputs, secrets.token_bytes(8))
            for _, note in plan.inputs:
                await conn.execute(
                    "UPDATE ecash_notes SET state = 'reserved', operation_id = ? "
                    "WHERE secret = ? AND state = 'unspent'",
                    (operation_id, note.spend_key.hex()),
                )
            await self._insert_op(conn, operation_id, SPEND, tx, outputs, len(plan.send))
        return await self._must_get(operation_id)

    async def prepare_fund(
        self, operation_id: str, kind: str, amount: Msat, module_fee: Msat, output: ModuleItem
    ) -> MintOperation:
        """Reserve notes and store a transaction paying them into another module's `output`
        (worth `amount`, plus `module_fee`), our change first: the module output is the last
        output, at index `len(op.outputs)`. Idempotent per operation id."""
        existing = await self.get(operation_id)
        if existing is not None:
            return existing
        async with self._db.transaction() as conn:
            if await self._exists(conn, operation_id):
                return await self._must_get(operation_id)
            notes = await self.unspent(conn)
            try:
                plan = plan_funding(notes, amount.value, module_fee.value, self.config, overpay=self._overpay)
            except InsufficientFunds:
                if await self._reserved(conn) > 0:
                    raise NotReady("notes are reserved by operations in flight; retry") from None
                raise
            change = self._outputs(operation_id, plan.change)
            inputs = [note_input(self.mint_instance_id, a, n) for a, n in plan.inputs]
            outputs = [note_output(self.mint_instance_id, o) for o in change] + [output]
            tx = build_module_tx(inputs, outputs, secrets.token_bytes(8))
            for _, note in plan.inputs:
                await conn.execute(
                    "UPDATE ecash_notes SET state = 'reserved', operation_id = ? "
                    "WHERE secret = ? AND state = 'unspent'",
                    (operation_id, note.spend_key.hex()),
                )
            await self._insert_op(conn, operation_id, kind, tx, change, 0)
        return await self._must_get(operation_id)

    async def prepare_claim(
        self,
        operation_id: str,
        kind: str,
        item: ModuleItem,
        secret_key: bytes,
        amount: Msat,
        module_fee: Msat,
    ) -> MintOperation:
        """Store a transaction spending another module's input `item` (worth `amount`, signed
        with `secret_key`) into fresh notes of ours. Idempotent per operation id."""
        existing = await self.get(operation_id)
        if existing is not None:
            return existing
        outputs = self._outputs(
            operation_id, claim_outputs(amount.value, module_fee.value, self.config, self._overpay)
        )
        tx = build_module_tx(
            [(item, secret_key)],
            [note_output(self.mint_instance_id, o) for o in outputs],
            secrets.token_bytes(8),
        )
        async with self._db.transaction() as conn:
            if not await self._exists(conn, operation_id):
                await self._insert_op(conn, operation_id, kind, tx, outputs, 0)
        return await self._must_get(operation_id)

    async def complete(
        self, operation_id: str, finished: Sequence[FinishedNote], result: dict[str, Any]
    ) -> None:
        """The federation accepted and the notes are made: our inputs become spent, our change
        notes spendable, the operation done with `result` (idempotent)."""
        op = await self._must_get(operation_id)
        if op.state is MintOpState.DONE:
            return
        ours = finished[op.send_count :]
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE ecash_notes SET state = 'spent' WHERE operation_id = ? AND state = 'reserved'",
                (operation_id,),
            )
            now = self._clock.now()
            for note in ours:
                await conn.execute(
                    "INSERT OR IGNORE INTO ecash_notes (secret, federation_id, amount_msat, signature, "
                    "state, created_at) VALUES (?, ?, ?, ?, 'unspent', ?)",
                    (note.note.spend_key.hex(), self._fid, note.amount, note.note.signature.hex(), now),
                )
            await conn.execute(
                "UPDATE ecash_operations SET state = 'done', result_json = ?, updated_at = ? "
                "WHERE operation_id = ?",
                (json.dumps(result, sort_keys=True), now, operation_id),
            )

    async def abort(self, operation_id: str, reason: str) -> None:
        """The federation refused the transaction (a threshold agreed): release our inputs."""
        async with self._db.transaction() as conn:
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

    async def unfinished(self, kinds: tuple[str, ...] | None = None) -> list[MintOperation]:
        """Operations of `kinds` prepared but neither completed nor aborted (to resume at start);
        `None`: every mint-driven kind (`fm_*`: receives, spends, LNv1 module operations)."""
        marks = ", ".join("?" for _ in kinds or ())
        where = f"AND kind IN ({marks}) " if kinds is not None else "AND kind LIKE 'fm_%' "
        async with self._db.conn.execute(
            "SELECT operation_id FROM ecash_operations WHERE federation_id = ? AND state = 'prepared' "
            + where
            + "ORDER BY created_at, operation_id",
            (self._fid, *(kinds or ())),
        ) as cur:
            rows = await cur.fetchall()
        return [op for r in rows if (op := await self.get(r[0])) is not None]

    async def _insert_op(
        self,
        conn: Any,
        operation_id: str,
        kind: str,
        tx: Transaction,
        outputs: Sequence[NoteSecrets],
        send: int,
    ) -> None:
        now = self._clock.now()
        await conn.execute(
            "INSERT INTO ecash_operations (operation_id, federation_id, kind, state, tx_json, outputs_json, "
            "created_at, updated_at) VALUES (?, ?, ?, 'prepared', ?, ?, ?, ?)",
            (
                operation_id,
                self._fid,
                kind,
                json.dumps({"tx": tx.to_hex(), "send_count": send}),
                _secrets_json(outputs),
                now,
                now,
            ),
        )

    async def _exists(self, conn: Any, operation_id: str) -> bool:
        async with conn.execute(
            "SELECT 1 FROM ecash_operations WHERE operation_id = ?", (operation_id,)
        ) as cur:
            return await cur.fetchone() is not None

    async def _reserved(self, conn: Any) -> int:
        async with conn.execute(
            "SELECT COALESCE(SUM(amount_msat), 0) FROM ecash_notes "
            "WHERE federation_id = ? AND state = 'reserved'",
            (self._fid,),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _must_get(self, operation_id: str) -> MintOperation:
        op = await self.get(operation_id)
        if op is None:
            raise NotReady(f"mint operation {operation_id} is not stored")
        return op
