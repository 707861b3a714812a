-- 0005: per-federation operator controls (fedimint-setlimits): an ecash cap, a low-water
-- alert level, switches per flow, and the drain mode. No row: no limits, everything on.
CREATE TABLE federation_controls (
    federation_id       TEXT PRIMARY KEY,
    max_ecash_msat      INTEGER,                     -- NULL: no cap
    low_water_msat      INTEGER,                     -- NULL: no alert
    receives            TEXT NOT NULL DEFAULT 'enabled',   -- enabled | disabled
    sends               TEXT NOT NULL DEFAULT 'enabled',
    swaps_in            TEXT NOT NULL DEFAULT 'enabled',
    swaps_out           TEXT NOT NULL DEFAULT 'enabled',
    mode                TEXT NOT NULL DEFAULT 'normal',    -- normal | drain
    updated_at          INTEGER NOT NULL
);
