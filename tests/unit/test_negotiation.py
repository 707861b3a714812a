from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from fedimint_gw.errors import FederationUnreachable, IncompatibleFederation
from fedimint_gw.federation.builtin import builtin_adapters
from fedimint_gw.federation.client import ApiVersion
from fedimint_gw.federation.registry import (
    GuardianVersions,
    discover_adapters,
    negotiate,
    parse_versions,
)


@dataclass(frozen=True)
class FakeFactory:
    major: int
    min_minor: int
    name: str

    def create(self, ctx: Any) -> Any:
        raise NotImplementedError


ADAPTERS = {1: FakeFactory(1, 0, "v1"), 2: FakeFactory(2, 0, "v2")}


def _g(name: str, **majors: int) -> GuardianVersions:
    return GuardianVersions(name, {int(k[1:]): v for k, v in majors.items()})


def test_picks_highest_common_major() -> None:
    answers = [_g(f"g{i}", m1=3, m2=1) for i in range(4)]
    assert negotiate(answers, 3, ADAPTERS) == ApiVersion(2, 1)


def test_v1_only_federation_gets_v1() -> None:
    answers = [_g(f"g{i}", m1=0) for i in range(4)]
    assert negotiate(answers, 3, ADAPTERS) == ApiVersion(1, 0)


def test_a_major_served_by_fewer_than_threshold_is_not_chosen() -> None:
    answers = [_g("g0", m1=0, m2=0), _g("g1", m1=0, m2=0), _g("g2", m1=0), _g("g3", m1=0)]
    assert negotiate(answers, 3, ADAPTERS) == ApiVersion(1, 0)


def test_minor_is_what_a_threshold_supports() -> None:
    answers = [_g("g0", m2=5), _g("g1", m2=4), _g("g2", m2=2), _g("g3", m2=1)]
    assert negotiate(answers, 3, ADAPTERS) == ApiVersion(2, 2)


def test_adapter_minimum_minor_is_respected() -> None:
    adapters = {2: FakeFactory(2, 3, "v2-new")}
    answers = [_g(f"g{i}", m2=2) for i in range(4)]
    with pytest.raises(IncompatibleFederation, match=r"2\.2"):
        negotiate(answers, 3, adapters)


def test_unknown_major_only_is_refused_naming_both_sides() -> None:
    answers = [_g(f"g{i}", m7=0) for i in range(4)]
    with pytest.raises(IncompatibleFederation) as info:
        negotiate(answers, 3, ADAPTERS)
    assert "7.0" in info.value.message and "v1" in info.value.message and "v2" in info.value.message


def test_too_few_answers_is_unreachable() -> None:
    with pytest.raises(FederationUnreachable):
        negotiate([_g("g0", m1=0)], 3, ADAPTERS)


@pytest.mark.parametrize(
    "body",
    [None, {}, {"majors": "x"}, {"majors": [1]}, {"majors": [{"major": "1", "max_minor": 0}]}],
)
def test_parse_versions_rejects_garbage(body: object) -> None:
    with pytest.raises(ValueError):
        parse_versions("g", body)


def test_entry_point_adapter_is_discovered_and_broken_ones_are_skipped() -> None:
    class EP:
        def __init__(self, name: str, obj: object) -> None:
            self.name, self._obj = name, obj

        def load(self) -> object:
            if isinstance(self._obj, Exception):
                raise self._obj
            return self._obj

    logs: list[str] = []
    third = FakeFactory(3, 0, "v3-thirdparty")
    found = discover_adapters(
        builtins=list(ADAPTERS.values()),
        load_entry_points=lambda: [EP("v3", third), EP("broken", ImportError("nope"))],
        log=lambda m, lvl: logs.append(m),
    )
    assert found[3] is third and set(found) == {1, 2, 3}
    assert any("broken" in m for m in logs)
    answers = [_g(f"g{i}", m1=0, m2=0, m3=0) for i in range(4)]
    assert negotiate(answers, 3, found) == ApiVersion(3, 0)


def test_installed_package_adds_an_adapter_via_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    pkg_dir = Path(__file__).resolve().parents[1] / "fixtures" / "thirdparty"
    monkeypatch.syspath_prepend(str(pkg_dir))
    found = discover_adapters(
        builtin_adapters()
    )  # real built-ins + real entry points from installed metadata
    assert {1, 2} <= set(found)
    assert found[3].name == "example-v3"
    answers = [_g(f"g{i}", m2=0, m3=1) for i in range(4)]
    assert negotiate(answers, 3, found) == ApiVersion(3, 1)
