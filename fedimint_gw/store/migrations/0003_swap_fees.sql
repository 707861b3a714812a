-- 0003: fees for swaps between an ordered pair of federations (default: the target's fees).
CREATE TABLE swap_fees (
    source_federation_id  TEXT NOT NULL,
    target_federation_id  TEXT NOT NULL,
    fee_base_msat         INTEGER NOT NULL,
    fee_ppm               INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    PRIMARY KEY (source_federation_id, target_federation_id)
);
