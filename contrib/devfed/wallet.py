"""The user's wallet: joins a federation by invite code, holds notes, moves ecash.

Lightning receive/pay through a gateway live in :mod:`contrib.devfed.wallet_ln` and operate
on a :class:`Wallet`.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import aiohttp
from coincurve import PrivateKey

from contrib.devfed.client import FederationClient, fetch_config, negotiate_major
from contrib.devfed.codec import canonical_json, object_id, sign
from contrib.devfed.config import PublicConfig
from contrib.devfed.contracts import INPUT_PURPOSE
from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.wallet_store import Note, WalletStore
from fedimint_gw.crypto.bdhke import blind, unblind
from fedimint_gw.crypto.point import Point
from fedimint_gw.domain.invite import parse_invite

Json = dict[str, object]
NOTES_PREFIX = "devfednotes1"


def split_amount(amount_msat: int) -> list[int]:
    """Power-of-two denominations summing to ``amount_msat`` (largest first)."""
    if amount_msat < 0:
        raise DevfedError(ErrorCode.INVALID_REQUEST, "amount must be >= 0")
    return [1 << i for i in range(amount_msat.bit_length() - 1, -1, -1) if amount_msat >> i & 1]


def encode_notes(federation_id: str, notes: Sequence[Note]) -> str:
    """Serialise notes for out-of-band transfer: ``devfednotes1`` + base64url(JSON)."""
    body = {"federation_id": federation_id, "notes": [n.to_input() for n in notes]}
    return NOTES_PREFIX + base64.urlsafe_b64encode(canonical_json(body)).decode().rstrip("=")


def decode_notes(text: str) -> tuple[str, list[Note]]:
    """Parse :func:`encode_notes` output."""
    text = text.strip()
    if not text.startswith(NOTES_PREFIX):
        raise DevfedError(ErrorCode.INVALID_REQUEST, f"ecash must start with {NOTES_PREFIX!r}")
    raw = text[len(NOTES_PREFIX) :]
    try:
        body = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        notes = [Note(int(n["amount_msat"]), str(n["secret"]), str(n["C"])) for n in body["notes"]]
        return str(body["federation_id"]), notes
    except (ValueError, KeyError, TypeError) as exc:
        raise DevfedError(ErrorCode.INVALID_REQUEST, f"malformed ecash string: {exc}") from None


@dataclass(frozen=True)
class Issuance:
    """A note issuance being built: outputs for the tx and the secrets to unblind them."""

    outputs: list[Json]
    secrets: list[Json]


class Wallet:
    """A single-federation user wallet persisted in one SQLite file."""

    def __init__(self, store: WalletStore, session: aiohttp.ClientSession) -> None:
        self.store = store
        self.session = session
        self._client: FederationClient | None = None
        self.last_rejected_peers: tuple[int, ...] = ()

    @classmethod
    def open(cls, path: Path, session: aiohttp.ClientSession) -> Wallet:
        """Open (or create) the wallet file; the caller owns ``session``."""
        return cls(WalletStore(path), session)

    def close(self) -> None:
        """Close the wallet file."""
        self.store.close()

    # ---- federation --------------------------------------------------------------------
    async def join(self, invite_code: str, major: int | None = None) -> str:
        """Join by invite code (checks the config hash); returns the federation id."""
        try:
            invite = parse_invite(invite_code)
        except ValueError as exc:
            raise DevfedError(ErrorCode.INVALID_REQUEST, f"bad invite code: {exc}") from None
        known = self.store.get_meta("federation_id")
        if known is not None and known != invite.federation_id.hex:
            raise DevfedError(ErrorCode.INVALID_REQUEST, "this wallet already joined another federation")
        config = await fetch_config(self.session, invite.guardian_urls, invite.federation_id.hex)
        chosen = major or await negotiate_major(self.session, config)
        self.store.set_meta("config", json.dumps(config.to_dict()))
        self.store.set_meta("federation_id", config.federation_id)
        self.store.set_meta("major", str(chosen))
        self.store.set_meta("invite", invite_code)
        self._client = None
        return config.federation_id

    @property
    def client(self) -> FederationClient:
        """The federation client (after :meth:`join`)."""
        if self._client is None:
            raw = self.store.get_meta("config")
            if raw is None:
                raise DevfedError(ErrorCode.INVALID_REQUEST, "join a federation first")
            major = int(self.store.get_meta("major") or "1")
            self._client = FederationClient(self.session, PublicConfig.from_dict(json.loads(raw)), major)
        return self._client

    @property
    def config(self) -> PublicConfig:
        """The joined federation's config."""
        return self.client.config

    @property
    def federation_id(self) -> str:
        """The joined federation's id."""
        return self.config.federation_id

    def use_major(self, major: int) -> None:
        """Switch API major (must be served by the federation)."""
        if major not in self.config.majors:
            raise DevfedError(ErrorCode.UNSUPPORTED, f"the federation does not serve v{major}")
        self.store.set_meta("major", str(major))
        self._client = None

    # ---- notes -------------------------------------------------------------------------
    def balance_msat(self) -> int:
        """Sum of held notes."""
        return sum(n.amount_msat for n in self.store.notes())

    def notes(self) -> list[Note]:
        """Held notes."""
        return self.store.notes()

    @staticmethod
    def new_issuance(amount_msat: int) -> Issuance:
        """Blinded note outputs for ``amount_msat``."""
        outputs: list[Json] = []
        kept: list[Json] = []
        for denom in split_amount(amount_msat):
            secret = secrets.token_bytes(32)
            b = blind(secret)
            outputs.append({"kind": "note", "amount_msat": denom, "B_": b.blinded.to_hex()})
            kept.append(
                {
                    "amount_msat": denom,
                    "secret": secret.hex(),
                    "r": b.blinding_factor,
                    "B_": b.blinded.to_hex(),
                }
            )
        return Issuance(outputs, kept)

    async def finish_issuance(
        self, txid: str, kept: Sequence[Mapping[str, object]], out_offset: int = 0
    ) -> list[Note]:
        """Collect and verify signature shares, unblind, and store the notes."""
        blinded = {
            out_offset + j: (int(str(k["amount_msat"])), Point.from_hex(str(k["B_"])))
            for j, k in enumerate(kept)
        }
        combined = await self.client.combine_signatures(txid, blinded)
        self.last_rejected_peers = combined.rejected_peers
        notes = []
        for j, k in enumerate(kept):
            denom = int(str(k["amount_msat"]))
            c = unblind(combined.points[out_offset + j], int(str(k["r"])), self.config.mint_pubkeys[denom])
            notes.append(Note(denom, str(k["secret"]), c.to_hex()))
        self.store.add_notes(notes, pending_txid=txid)
        return notes

    async def resume_pending(self) -> int:
        """Finish issuances interrupted after submission; returns msat recovered."""
        total = 0
        for txid, kept in self.store.pending().items():
            offset = int(str(kept[0].get("out_offset", 0))) if kept else 0
            try:
                notes = await self.finish_issuance(txid, kept, offset)
            except DevfedError as exc:
                if exc.code is ErrorCode.UNKNOWN_TRANSACTION:
                    continue
                raise
            total += sum(n.amount_msat for n in notes)
        return total

    async def faucet(self, amount_msat: int) -> int:
        """Take ``amount_msat`` from the regtest faucet."""
        issuance = self.new_issuance(amount_msat)
        txid = object_id({"inputs": [], "outputs": issuance.outputs, "faucet": True})
        self.store.add_pending(txid, issuance.secrets)
        result = await self.client.faucet(issuance.outputs)
        await self.finish_issuance(str(result["txid"]), issuance.secrets)
        return amount_msat

    def select_notes(self, amount_msat: int) -> list[Note]:
        """Notes covering ``amount_msat`` (greedy, largest first), else ``unbalanced``."""
        chosen: list[Note] = []
        total = 0
        for note in sorted(self.store.notes(), key=lambda n: n.amount_msat):
            if total >= amount_msat:
                break
            chosen.append(note)
            total += note.amount_msat
        if total < amount_msat:
            raise DevfedError(
                ErrorCode.UNBALANCED, f"balance {self.balance_msat()} msat < {amount_msat} msat"
            )
        return chosen

    async def transact(
        self,
        extra_inputs: Sequence[tuple[Json, PrivateKey | None]],
        extra_outputs: Sequence[Json],
        receive_msat: int = 0,
        spend_msat: int = 0,
    ) -> tuple[str, list[Note]]:
        """Build, sign, submit a tx spending ``spend_msat`` (+fee) of notes into ``extra_outputs``.

        ``extra_inputs`` (contract inputs with their signing keys) add ``receive_msat``;
        change and received value come back as fresh notes. Returns ``(txid, new notes)``.
        """
        fee = self.config.tx_fee_msat
        need = spend_msat + fee - receive_msat
        spent = self.select_notes(need) if need > 0 else []
        change = sum(n.amount_msat for n in spent) - need
        issuance = self.new_issuance(change)
        inputs = [dict(i) for i, _ in extra_inputs] + [n.to_input() for n in spent]
        outputs = [dict(o) for o in extra_outputs] + issuance.outputs
        txid = object_id({"inputs": inputs, "outputs": outputs})
        signatures: list[str | None] = [
            sign(key, INPUT_PURPOSE, {"txid": txid, "input_index": i}) if key else None
            for i, (_, key) in enumerate(extra_inputs)
        ] + [None] * len(spent)
        offset = len(extra_outputs)
        kept = [dict(k, out_offset=offset) for k in issuance.secrets]
        self.store.add_pending(txid, kept)
        result = await self.client.submit({"inputs": inputs, "outputs": outputs, "signatures": signatures})
        self.store.remove_notes(spent)
        notes = await self.finish_issuance(str(result["txid"]), kept, offset) if kept else []
        if not kept:
            self.store.add_notes([], pending_txid=txid)
        return txid, notes

    async def _swap_notes(self, notes: Sequence[Note], amounts: Sequence[int]) -> list[list[Note]]:
        """Spend ``notes`` into fresh notes, one issuance per entry of ``amounts``."""
        issuances = [self.new_issuance(a) for a in amounts]
        outputs = [o for i in issuances for o in i.outputs]
        kept = [k for i in issuances for k in i.secrets]
        inputs = [n.to_input() for n in notes]
        txid = object_id({"inputs": inputs, "outputs": outputs})
        self.store.add_pending(txid, kept)
        await self.client.submit({"inputs": inputs, "outputs": outputs, "signatures": [None] * len(inputs)})
        self.store.remove_notes(list(notes))
        new = await self.finish_issuance(txid, kept)
        groups: list[list[Note]] = []
        pos = 0
        for i in issuances:
            groups.append(new[pos : pos + len(i.outputs)])
            pos += len(i.outputs)
        return groups

    async def reissue(self, notes: Sequence[Note]) -> int:
        """Spend ``notes`` into fresh notes of this wallet; returns msat received."""
        received = sum(n.amount_msat for n in notes) - self.config.tx_fee_msat
        if received < 0:
            raise DevfedError(ErrorCode.UNBALANCED, "notes are worth less than the fee")
        await self._swap_notes(notes, [received])
        return received

    async def send_ecash(self, amount_msat: int) -> str:
        """Split off exactly ``amount_msat`` in fresh notes, remove them, and return them serialised."""
        need = amount_msat + self.config.tx_fee_msat
        spent = self.select_notes(need)
        out, _change = await self._swap_notes(spent, [amount_msat, sum(n.amount_msat for n in spent) - need])
        self.store.remove_notes(out)
        return encode_notes(self.federation_id, out)

    async def receive_ecash(self, text: str) -> int:
        """Reissue out-of-band notes into this wallet; returns msat received."""
        federation_id, notes = decode_notes(text)
        if federation_id != self.federation_id:
            raise DevfedError(ErrorCode.INVALID_REQUEST, "these notes belong to another federation")
        return await self.reissue(notes)


def as_json(value: object) -> Json:
    """Narrow a JSON value to an object."""
    if not isinstance(value, dict):
        raise DevfedError(ErrorCode.INTERNAL, f"expected a JSON object, got {value!r}")
    return cast(Json, value)
