"""API version negotiation: upstream's test cases, module skipping, the threshold rule."""

from __future__ import annotations

import pytest

from fedimint_gw.fedimint.config import ClientConfig, ConsensusVersion, ModuleConfig, PeerUrl
from fedimint_gw.fedimint.errors import DecodeError, IncompatibleVersions, ThresholdNotReached
from fedimint_gw.fedimint.versions import (
    ApiVersion,
    ApiVersionSet,
    ConsensusMatch,
    SupportedApiVersionsSummary,
    SupportedCoreApiVersions,
    SupportedModuleApiVersions,
    client_summary,
    discover_common_api_versions_set,
    negotiate,
)

C00 = ConsensusVersion(0, 0)
CLIENT = SupportedApiVersionsSummary(SupportedCoreApiVersions(C00, (ApiVersion(2, 3), ApiVersion(3, 1))))


def _peer(consensus: ConsensusVersion, *api: tuple[int, int]) -> SupportedApiVersionsSummary:
    return SupportedApiVersionsSummary(
        SupportedCoreApiVersions(consensus, tuple(ApiVersion(*a) for a in api))
    )


def _core(
    peers: dict[int, SupportedApiVersionsSummary], rule: ConsensusMatch = ConsensusMatch.EXACT
) -> ApiVersion:
    return discover_common_api_versions_set(CLIENT, peers, rule).core


# Cases of discover_common_core_api_version_sanity (fedimint-client/src/api_version_discovery.rs)


def test_upstream_no_peers() -> None:
    with pytest.raises(IncompatibleVersions):
        _core({})


def test_upstream_same_version() -> None:
    assert _core({0: _peer(C00, (2, 3))}) == ApiVersion(2, 3)


def test_upstream_different_minor_consensus_depends_on_rule() -> None:
    peers = {0: _peer(ConsensusVersion(0, 1), (2, 3))}
    assert _core(peers, ConsensusMatch.SAME_MAJOR) == ApiVersion(2, 3)  # newest upstream test
    with pytest.raises(IncompatibleVersions):
        _core(peers)  # exact equality, as the older code


def test_upstream_wrong_consensus_version() -> None:
    for rule in ConsensusMatch:
        with pytest.raises(IncompatibleVersions):
            _core({0: _peer(ConsensusVersion(1, 0), (2, 4))}, rule)


def test_upstream_major_with_most_peers_wins() -> None:
    """{0: [2.2], 1: [3.1]}: no guardian serves 2.3; one serves 3.1."""
    assert _core({0: _peer(C00, (2, 2)), 1: _peer(C00, (3, 1))}) == ApiVersion(3, 1)


def test_upstream_minor_is_smallest_compatible_guardian_minor() -> None:
    assert _core({0: _peer(C00, (2, 4)), 1: _peer(C00, (2, 5))}) == ApiVersion(2, 4)


def test_tie_goes_to_the_first_client_version() -> None:
    assert _core({0: _peer(C00, (2, 3)), 1: _peer(C00, (3, 1))}) == ApiVersion(2, 3)


def _module(
    core: ConsensusVersion, module: ConsensusVersion, *api: tuple[int, int]
) -> SupportedModuleApiVersions:
    return SupportedModuleApiVersions(core, module, tuple(ApiVersion(*a) for a in api))


def test_modules_without_common_version_are_skipped() -> None:
    m20 = ConsensusVersion(2, 0)
    client = SupportedApiVersionsSummary(
        SupportedCoreApiVersions(C00, (ApiVersion(0, 0),)),
        {0: _module(C00, m20, (0, 0)), 1: _module(C00, m20, (1, 0)), 2: _module(C00, m20, (0, 0))},
    )
    guardian = SupportedApiVersionsSummary(
        SupportedCoreApiVersions(C00, (ApiVersion(0, 5),)),
        {
            0: _module(C00, m20, (0, 2)),  # fine
            1: _module(C00, m20, (0, 9)),  # no API major 1
            2: _module(C00, ConsensusVersion(3, 0), (0, 0)),  # other module consensus
        },
    )
    result = discover_common_api_versions_set(client, {0: guardian, 1: guardian})
    assert result == ApiVersionSet(ApiVersion(0, 5), {0: ApiVersion(0, 2)})


def test_negotiate_needs_a_threshold_of_answers() -> None:
    peers = {0: _peer(C00, (2, 3)), 1: _peer(C00, (2, 3))}
    with pytest.raises(ThresholdNotReached):
        negotiate(CLIENT, peers, num_peers=4)
    assert negotiate(CLIENT, {**peers, 2: _peer(C00, (2, 3))}, num_peers=4).core == ApiVersion(2, 3)


def test_negotiate_one_liar_cannot_pick_the_version() -> None:
    """A version must be served by a threshold (3 of 4): one liar changes nothing, and when
    only two guardians agree on any version the negotiation refuses instead of guessing
    (upstream's choice alone would take 2.3 with two supporters)."""
    honest = _peer(C00, (2, 3))
    liar = _peer(C00, (3, 9))
    assert negotiate(CLIENT, {0: honest, 1: honest, 2: honest, 3: liar}, 4).core == ApiVersion(2, 3)
    with pytest.raises(IncompatibleVersions):
        negotiate(CLIENT, {0: honest, 1: honest, 2: liar, 3: liar}, 4)


def test_summary_json_round_trip_and_refusals() -> None:
    summary = SupportedApiVersionsSummary(
        SupportedCoreApiVersions(ConsensusVersion(2, 1), (ApiVersion(0, 7),)),
        {0: _module(ConsensusVersion(2, 1), ConsensusVersion(2, 0), (0, 1))},
    )
    raw = summary.to_json()
    assert raw == {
        "core": {"core_consensus": {"major": 2, "minor": 1}, "api": [{"major": 0, "minor": 7}]},
        "modules": {
            "0": {
                "core_consensus": {"major": 2, "minor": 1},
                "module_consensus": {"major": 2, "minor": 0},
                "api": [{"major": 0, "minor": 1}],
            }
        },
    }
    assert SupportedApiVersionsSummary.from_json(raw) == summary
    bad = {
        "core": {
            "core_consensus": {"major": 2, "minor": 1},
            "api": [{"major": 1, "minor": 0}, {"major": 0, "minor": 0}],
        }
    }
    with pytest.raises(DecodeError, match="increasing"):
        SupportedApiVersionsSummary.from_json(bad)
    with pytest.raises(DecodeError):
        SupportedApiVersionsSummary.from_json({"core": {"api": []}})


def test_client_summary_from_config() -> None:
    config = ClientConfig(
        {0: PeerUrl("ws://a/", "a")},
        ConsensusVersion(2, 1),
        modules={
            0: ModuleConfig(0, "ln", ConsensusVersion(2, 0), b""),
            1: ModuleConfig(1, "mint", ConsensusVersion(2, 0), b""),
            2: ModuleConfig(2, "wallet", ConsensusVersion(2, 0), b""),
        },
    )
    summary = client_summary(
        config, [ApiVersion(0, 0)], {"mint": [ApiVersion(0, 0)], "ln": [ApiVersion(0, 0)]}
    )
    assert summary.core.core_consensus == ConsensusVersion(2, 1)
    assert sorted(summary.modules) == [0, 1]
    assert summary.modules[1].module_consensus == ConsensusVersion(2, 0)
