-- 0002: the gateway's own ecash notes per federation, and the federation operations that
-- spend or create them. An operation is written (with its blinding factors) before its
-- transaction is submitted, so a crash at any point can be replayed.
CREATE TABLE ecash_notes (
    secret            TEXT PRIMARY KEY,
    federation_id     TEXT NOT NULL,
    amount_msat       INTEGER NOT NULL,
    signature         TEXT NOT NULL,
    state             TEXT NOT NULL,          -- unspent | reserved | spent
    operation_id      TEXT,                   -- the operation that reserved or spent it
    created_at        INTEGER NOT NULL
);
CREATE INDEX ecash_notes_fed ON ecash_notes (federation_id, state);

CREATE TABLE ecash_operations (
    operation_id      TEXT PRIMARY KEY,
    federation_id     TEXT NOT NULL,
    kind              TEXT NOT NULL,
    state             TEXT NOT NULL,          -- prepared | done | failed
    tx_json           TEXT NOT NULL,
    outputs_json      TEXT NOT NULL,          -- pending note outputs, with blinding factors
    result_json       TEXT NOT NULL DEFAULT '{}',
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX ecash_operations_fed ON ecash_operations (federation_id, state);
