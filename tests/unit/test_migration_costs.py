"""What a migration's chunk costs, read back from its record: per chunk size since mint fees are
priced per note, and, for records written before that, the flat transaction fees of the quote."""

from __future__ import annotations

from typing import Any

from fedimint_gw.domain.amount import FeeSchedule
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentState
from fedimint_gw.services.liquidity.exchange import ExchangeTerms, migrate_record
from fedimint_gw.services.liquidity.migration_chunks import ChunkCosts, _costs, _expected

PAIR = (FederationId("aa" * 32), FederationId("bb" * 32))
TERMS = ExchangeTerms(FeeSchedule(1000, 2000), 10, 20)


def record(moved: int, **data: Any) -> Any:
    base = {"direction": "out", "terms": TERMS.to_json(), "chunk_msat": 60_000, "moved_msat": moved}
    return migrate_record("migrate:x", PaymentState.PAYING, PAIR, 100_000, 0, {**base, **data})


def test_each_chunk_size_has_its_own_costs() -> None:
    full = ChunkCosts(ExchangeTerms(FeeSchedule(1000, 2000), 1300, 1400), 2000, 1600)
    last = ChunkCosts(ExchangeTerms(FeeSchedule(1000, 2000), 900, 1100), 1500, 1200)
    planned = {"60000": full.to_json(), "40000": last.to_json()}
    assert _costs(record(0, chunk_costs=planned)) == full
    assert _costs(record(60_000, chunk_costs=planned)) == last  # the last chunk is 40,000 msat
    assert _expected(record(60_000, chunk_costs=planned)) == 40_000 - (1000 + 80 + 900 + 1100)
    assert full.total(60_000) == 1000 + 120 + 1300 + 1400 + 2000 + 1600


def test_a_record_from_before_per_size_costs_keeps_its_flat_fees() -> None:
    costs = _costs(record(0))
    assert costs == ChunkCosts(TERMS, spend_msat=10, reissue_msat=20)
    assert _expected(record(0)) == 60_000 - (1000 + 120 + 10 + 20)
