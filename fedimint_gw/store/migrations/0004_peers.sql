-- 0004: peer gateways (docs/peer-protocol.md): links, ledgers, seen nonces, settlements.
CREATE TABLE peers (
    node_id                 TEXT PRIMARY KEY,
    url                     TEXT,
    state                   TEXT NOT NULL,          -- introduced | pending | active | removed
    credit_limit_msat       INTEGER NOT NULL,       -- what we grant the peer
    peer_credit_limit_msat  INTEGER NOT NULL DEFAULT 0,  -- what the peer grants us (its hello)
    peer_key                TEXT,
    version                 INTEGER NOT NULL DEFAULT 0,
    announce_json           TEXT NOT NULL DEFAULT '{}',
    last_seen               INTEGER,
    last_error              TEXT,
    last_error_at           INTEGER,
    ledger_status           TEXT NOT NULL DEFAULT 'unchecked',
    ledger_detail           TEXT,
    statement_json          TEXT,                   -- the peer's last signed statement
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);

CREATE TABLE peer_ledger (
    node_id     TEXT NOT NULL,
    entry_id    TEXT NOT NULL,
    delta_msat  INTEGER NOT NULL,                   -- > 0: the peer owes us more
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (node_id, entry_id)
);

CREATE TABLE peer_nonces (
    node_id  TEXT NOT NULL,
    nonce    TEXT NOT NULL,
    seen_at  INTEGER NOT NULL,
    PRIMARY KEY (node_id, nonce)
);
CREATE INDEX peer_nonces_seen ON peer_nonces (seen_at);

CREATE TABLE peer_settlements (
    settlement_id  TEXT NOT NULL,
    node_id        TEXT NOT NULL,
    role           TEXT NOT NULL,                   -- debtor | creditor
    state          TEXT NOT NULL,
    amount_msat    INTEGER NOT NULL,
    invoice        TEXT,
    payment_hash   TEXT,
    preimage       TEXT,
    error          TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (node_id, settlement_id)
);
