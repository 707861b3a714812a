from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedimint_gw.domain.amount import FeeSchedule, Msat
from fedimint_gw.domain.htlc import HtlcEvent, answer_unknown_payment
from fedimint_gw.domain.ids import FederationId, ShortChannelId, parse_node_id
from fedimint_gw.errors import all_error_classes


def test_msat_parse_forms() -> None:
    assert Msat.parse(1500) == Msat(1500)
    assert Msat.parse("1500msat") == Msat(1500)
    assert Msat.parse("2sat") == Msat(2000)
    assert Msat.parse("7") == Msat(7)


@pytest.mark.parametrize(
    "bad", [-1, "abc", "1.5", True, None, 2.0, "-3sat", 10**30, " 7 ", "7\n", "१२३", "\uff11\uff12", "²"]
)
def test_msat_rejects_bad_input(bad: object) -> None:
    with pytest.raises(ValueError):
        Msat.parse(bad)


def test_msat_subtraction_never_negative() -> None:
    assert Msat(5) - Msat(3) == Msat(2)
    with pytest.raises(ValueError):
        Msat(3) - Msat(5)


def test_fee_is_base_plus_ppm_rounded_down() -> None:
    fees = FeeSchedule(2000, 3000)
    assert fees.fee(Msat(1_000_000)) == Msat(5000)
    assert fees.fee(Msat(333)) == Msat(2000)  # 0.999 msat proportional rounds down


@given(
    base=st.integers(0, 10_000),
    ppm=st.integers(0, 1_000_000),
    gross=st.integers(0, 10**12),
)
def test_amount_before_fee_is_the_largest_net(base: int, ppm: int, gross: int) -> None:
    fees = FeeSchedule(base, ppm)
    net = fees.amount_before_fee(Msat(gross))
    if net.value > 0:
        assert net.value + fees.fee(net).value <= gross
    nxt = Msat(net.value + 1)
    assert nxt.value + fees.fee(nxt).value > gross


@pytest.mark.parametrize("base,ppm", [(-1, 0), (0, -1), (0, 1_000_001), (True, 0)])
def test_fee_schedule_rejects_bad_values(base: int, ppm: int) -> None:
    with pytest.raises(ValueError):
        FeeSchedule(base, ppm)


@given(st.integers(0, (1 << 64) - 1))
def test_scid_int_round_trip(value: int) -> None:
    scid = ShortChannelId.from_int(value)
    assert scid.to_int() == value
    assert ShortChannelId.parse(str(scid)) == scid


@pytest.mark.parametrize("bad", ["1x2", "axbxc", "1x2x3x4", "16777216x0x0", -1, ""])
def test_scid_rejects_bad_input(bad: object) -> None:
    with pytest.raises(ValueError):
        ShortChannelId.parse(bad)


def test_federation_id_normalises_case_and_rejects_garbage() -> None:
    fid = FederationId.parse("AB" * 32)
    assert fid.hex == "ab" * 32
    for bad in ["ab" * 31, "zz" * 32, 5]:
        with pytest.raises(ValueError):
            FederationId.parse(bad)


def test_node_id_validation() -> None:
    good = "02" + "11" * 32
    assert parse_node_id(good.upper()) == good
    with pytest.raises(ValueError):
        parse_node_id("04" + "11" * 32)


def test_htlc_event_parses_a_forward_to_a_fake_scid() -> None:
    onion = {"payload": "00", "short_channel_id": "0x0x1", "forward_msat": 1000, "outgoing_cltv_value": 150}
    htlc = {
        "short_channel_id": "103x1x0",
        "id": 4,
        "amount_msat": 1100,
        "cltv_expiry": 200,
        "cltv_expiry_relative": 50,
        "payment_hash": "AA" * 32,
        "extra_tlvs": "",
    }
    ev = HtlcEvent.from_hook(onion, htlc)
    assert ev.forward_scid == ShortChannelId(0, 0, 1)
    assert ev.key == ("103x1x0", 4)
    assert ev.payment_hash == "aa" * 32
    assert ev.payment_secret is None and ev.total_msat is None


def test_unknown_payment_failure_encodes_amount_and_height() -> None:
    ans = answer_unknown_payment(0x0102, 0x0304)
    assert ans == {"result": "fail", "failure_message": "400f" + "0000000000000102" + "00000304"}


def test_error_codes_are_unique() -> None:
    codes = [cls.code for cls in all_error_classes()]
    assert len(codes) == len(set(codes)) and len(codes) > 10
