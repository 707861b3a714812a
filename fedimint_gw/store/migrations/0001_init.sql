-- 0001: federations, the scid allocator, and the payment flow journal.
CREATE TABLE federations (
    federation_id     TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    invite_code       TEXT NOT NULL,
    api_major         INTEGER NOT NULL,
    api_minor         INTEGER NOT NULL,
    scid              INTEGER NOT NULL UNIQUE,
    fee_base_msat     INTEGER NOT NULL,
    fee_ppm           INTEGER NOT NULL,
    config_json       TEXT NOT NULL,
    state             TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

-- Fake short channel ids are never reused, even after a federation is left:
-- an old invoice must never land in a different federation.
CREATE TABLE scid_allocator (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    last_index        INTEGER NOT NULL
);
INSERT INTO scid_allocator (id, last_index) VALUES (1, 0);

-- One row per payment flow (receive, send, swap, peer forward, migrate).
-- `state` is the flow's state machine position, written before each side effect.
CREATE TABLE payments (
    payment_id        TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    state             TEXT NOT NULL,
    federation_id     TEXT,
    target_federation_id TEXT,
    payment_hash      TEXT NOT NULL,
    amount_msat       INTEGER NOT NULL,
    fee_msat          INTEGER NOT NULL DEFAULT 0,
    htlc_scid         TEXT,
    htlc_id           INTEGER,
    preimage          TEXT,
    error             TEXT,
    data_json         TEXT NOT NULL DEFAULT '{}',
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX payments_hash ON payments (payment_hash);
CREATE INDEX payments_federation ON payments (federation_id, created_at);
CREATE UNIQUE INDEX payments_htlc ON payments (htlc_scid, htlc_id) WHERE htlc_scid IS NOT NULL;
