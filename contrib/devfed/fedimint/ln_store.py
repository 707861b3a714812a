"""SQLite tables of devfed's LNv1 module (`ln`), in the federation's own database file.

Offers by payment hash, contract accounts by contract id (their consensus encoding), output
outcomes by out point, used encrypted preimages, gateway registrations with an expiry, each
guardian's threshold_crypto key share, and the consensus block count (meta).
Writes happen inside the sequencer's ``store.atomic()`` block for the transaction.
"""

from __future__ import annotations

import sqlite3

from contrib.devfed.fedimint.store import FedimintStore
from fedimint_gw.fedimint.encoding import decode_whole, encode
from fedimint_gw.fedimint.ln.contracts import ContractAccount, IncomingContractOffer
from fedimint_gw.fedimint.ln.items import LightningOutputOutcome, read_ln_outcome, write_ln_outcome

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ln_key_shares (peer_id INTEGER PRIMARY KEY, secret_hex TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ln_offers (hash_hex TEXT PRIMARY KEY, offer_hex TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ln_used_ciphertexts (digest_hex TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ln_accounts (contract_id_hex TEXT PRIMARY KEY, account_hex TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ln_outcomes (
    txid TEXT NOT NULL, out_idx INTEGER NOT NULL, outcome_hex TEXT NOT NULL, PRIMARY KEY (txid, out_idx));
CREATE TABLE IF NOT EXISTS ln_gateways (
    gateway_id_hex TEXT PRIMARY KEY, info_json TEXT NOT NULL, vetted INTEGER NOT NULL,
    valid_until REAL NOT NULL);
"""
BLOCK_COUNT_KEY = "ln_block_count"


class LnStore:
    """The `ln` module's rows; shares the federation store's connection and transactions."""

    def __init__(self, store: FedimintStore) -> None:
        self.store = store
        self._conn: sqlite3.Connection = store.connection
        for statement in _SCHEMA.split(";"):  # not executescript: it would commit an open transaction
            if statement.strip():
                self._conn.execute(statement)

    def save_key_share(self, peer_id: int, secret: bytes) -> None:
        self._conn.execute("INSERT OR REPLACE INTO ln_key_shares VALUES (?, ?)", (peer_id, secret.hex()))

    def key_share(self, peer_id: int) -> bytes:
        """Guardian `peer_id`'s own threshold_crypto secret share (only its row is read)."""
        row = self._conn.execute(
            "SELECT secret_hex FROM ln_key_shares WHERE peer_id=?", (peer_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"guardian {peer_id} has no ln key share")
        return bytes.fromhex(row[0])

    def block_count(self) -> int:
        return int(self.store.get_meta(BLOCK_COUNT_KEY) or 0)

    def set_block_count(self, count: int) -> None:
        self.store.set_meta(BLOCK_COUNT_KEY, str(count))

    def offer(self, payment_hash: bytes) -> IncomingContractOffer | None:
        row = self._conn.execute(
            "SELECT offer_hex FROM ln_offers WHERE hash_hex=?", (payment_hash.hex(),)
        ).fetchone()
        return None if row is None else IncomingContractOffer.from_bytes(bytes.fromhex(row[0]))

    def put_offer(self, offer: IncomingContractOffer) -> None:
        self._conn.execute("INSERT INTO ln_offers VALUES (?, ?)", (offer.hash.hex(), offer.to_bytes().hex()))

    def remove_offer(self, payment_hash: bytes) -> None:
        self._conn.execute("DELETE FROM ln_offers WHERE hash_hex=?", (payment_hash.hex(),))

    def ciphertext_used(self, digest: bytes) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM ln_used_ciphertexts WHERE digest_hex=?", (digest.hex(),)
        ).fetchone()
        return row is not None

    def mark_ciphertext(self, digest: bytes) -> None:
        self._conn.execute("INSERT INTO ln_used_ciphertexts VALUES (?)", (digest.hex(),))

    def account(self, contract_id: bytes) -> ContractAccount | None:
        row = self._conn.execute(
            "SELECT account_hex FROM ln_accounts WHERE contract_id_hex=?", (contract_id.hex(),)
        ).fetchone()
        return None if row is None else decode_whole(bytes.fromhex(row[0]), ContractAccount.read)

    def put_account(self, account: ContractAccount) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO ln_accounts VALUES (?, ?)",
            (account.contract_id.hex(), encode(account.write).hex()),
        )

    def accounts(self) -> list[ContractAccount]:
        rows = self._conn.execute("SELECT account_hex FROM ln_accounts").fetchall()
        return [decode_whole(bytes.fromhex(r[0]), ContractAccount.read) for r in rows]

    def outcome(self, txid: bytes, out_idx: int) -> LightningOutputOutcome | None:
        row = self._conn.execute(
            "SELECT outcome_hex FROM ln_outcomes WHERE txid=? AND out_idx=?", (txid.hex(), out_idx)
        ).fetchone()
        return None if row is None else decode_whole(bytes.fromhex(row[0]), read_ln_outcome)

    def put_outcome(self, txid: bytes, out_idx: int, outcome: LightningOutputOutcome) -> None:
        raw = encode(lambda w: write_ln_outcome(w, outcome))
        self._conn.execute(
            "INSERT OR REPLACE INTO ln_outcomes VALUES (?, ?, ?)", (txid.hex(), out_idx, raw.hex())
        )

    def put_gateway(self, gateway_id: bytes, info_json: str, vetted: bool, valid_until: float) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO ln_gateways VALUES (?, ?, ?, ?)",
            (gateway_id.hex(), info_json, int(vetted), valid_until),
        )

    def gateways(self, now: float) -> list[tuple[str, bool, float]]:
        """Unexpired registrations: (info JSON, vetted, valid until)."""
        self._conn.execute("DELETE FROM ln_gateways WHERE valid_until < ?", (now,))
        rows = self._conn.execute(
            "SELECT info_json, vetted, valid_until FROM ln_gateways ORDER BY gateway_id_hex"
        ).fetchall()
        return [(str(r[0]), bool(r[1]), float(r[2])) for r in rows]
