"""API version negotiation, as Fedimint's client does it (`discover_common_api_versions_set`).

Each guardian answers `version` with a `SupportedApiVersionsSummary`:
    {"core": {"core_consensus": {major, minor}, "api": [{major, minor}, ...]},
     "modules": {"<id>": {"core_consensus", "module_consensus", "api": [...]}}}
(`api` lists one entry per major, majors strictly increasing; for a server `minor` is the
highest it serves, for a client the lowest it needs). The client's own summary takes its
`core_consensus` from the config's `consensus_version` and each module's `module_consensus`
from that module's config `version`.

Per component (core, then each module the client knows), as upstream:
1. A guardian is compatible with a client API version when its consensus versions match the
   client's and it lists the same API major with `client minor <= guardian minor`.
2. Among the client's API versions (ascending major), the one compatible with the most
   guardians wins (the first one on a tie).
3. The minor used is the smallest guardian minor among the compatible guardians
   (newer `fedimint-client/src/api_version_discovery.rs`; older releases kept the client's).
4. No common core version is an error; a module without one is skipped.
How consensus versions "match" differs between upstream versions: older code compares them
for equality; the newest test ("different minor consensus version, we don't care") compares
the major only. `ConsensusMatch` selects the rule; EXACT is the default.

On top of upstream's choice, `negotiate` (ours) requires answers from a threshold of
guardians and a version that a threshold of them serve, so one lying guardian cannot steer it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fedimint_gw.fedimint import json_fields as jf
from fedimint_gw.fedimint.config import ClientConfig, ConsensusVersion, threshold
from fedimint_gw.fedimint.encoding import U16_MAX, U32_MAX
from fedimint_gw.fedimint.errors import DecodeError, IncompatibleVersions, ThresholdNotReached


class ConsensusMatch(enum.Enum):
    """How a guardian's consensus version must relate to the client's."""

    EXACT = "exact"
    SAME_MAJOR = "same_major"

    def matches(self, client: ConsensusVersion, guardian: ConsensusVersion) -> bool:
        if self is ConsensusMatch.EXACT:
            return client == guardian
        return client.major == guardian.major


@dataclass(frozen=True, order=True)
class ApiVersion:
    major: int
    minor: int

    def to_json(self) -> dict[str, int]:
        return {"major": self.major, "minor": self.minor}


def _api_list(value: object, what: str) -> tuple[ApiVersion, ...]:
    if not isinstance(value, list):
        raise DecodeError(f"{what} must be a list")
    out: list[ApiVersion] = []
    for i, item in enumerate(value):
        data = jf.obj(item, f"{what}[{i}]")
        version = ApiVersion(
            jf.integer(jf.field(data, "major", what), f"{what}[{i}].major", U32_MAX),
            jf.integer(jf.field(data, "minor", what), f"{what}[{i}].minor", U32_MAX),
        )
        if out and out[-1].major >= version.major:
            raise DecodeError(f"{what}: API majors must be unique and increasing")
        out.append(version)
    return tuple(out)


def _minor_for(api: Sequence[ApiVersion], major: int) -> int | None:
    return next((v.minor for v in api if v.major == major), None)


@dataclass(frozen=True)
class SupportedCoreApiVersions:
    core_consensus: ConsensusVersion
    api: tuple[ApiVersion, ...]

    def to_json(self) -> dict[str, object]:
        return {"core_consensus": self.core_consensus.to_json(), "api": [v.to_json() for v in self.api]}


@dataclass(frozen=True)
class SupportedModuleApiVersions:
    core_consensus: ConsensusVersion
    module_consensus: ConsensusVersion
    api: tuple[ApiVersion, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "core_consensus": self.core_consensus.to_json(),
            "module_consensus": self.module_consensus.to_json(),
            "api": [v.to_json() for v in self.api],
        }


@dataclass(frozen=True)
class SupportedApiVersionsSummary:
    """What one side supports: core API versions and per-module-instance API versions."""

    core: SupportedCoreApiVersions
    modules: Mapping[int, SupportedModuleApiVersions] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "core": self.core.to_json(),
            "modules": {str(k): m.to_json() for k, m in self.modules.items()},
        }

    @classmethod
    def from_json(cls, value: object) -> SupportedApiVersionsSummary:
        """Parse a guardian's `version` answer; DecodeError if malformed."""
        data = jf.obj(value, "version summary")
        core_raw = jf.obj(jf.field(data, "core", "version summary"), "core")
        core = SupportedCoreApiVersions(
            ConsensusVersion.from_json(jf.field(core_raw, "core_consensus", "core"), "core.core_consensus"),
            _api_list(jf.field(core_raw, "api", "core"), "core.api"),
        )

        def module(raw: object, what: str) -> SupportedModuleApiVersions:
            m = jf.obj(raw, what)
            return SupportedModuleApiVersions(
                ConsensusVersion.from_json(jf.field(m, "core_consensus", what), f"{what}.core_consensus"),
                ConsensusVersion.from_json(jf.field(m, "module_consensus", what), f"{what}.module_consensus"),
                _api_list(jf.field(m, "api", what), f"{what}.api"),
            )

        return cls(core, jf.int_keyed(data.get("modules", {}), "modules", U16_MAX, module))


@dataclass(frozen=True)
class ApiVersionSet:
    """The API version to use for the core and for each module instance that has one."""

    core: ApiVersion
    modules: Mapping[int, ApiVersion]


def client_summary(
    config: ClientConfig,
    core_api: Sequence[ApiVersion],
    module_api: Mapping[str, Sequence[ApiVersion]],
) -> SupportedApiVersionsSummary:
    """Our side: consensus versions from the config, API versions we speak per module kind."""
    modules = {
        instance: SupportedModuleApiVersions(config.consensus_version, m.version, tuple(module_api[m.kind]))
        for instance, m in config.modules.items()
        if m.kind in module_api
    }
    return SupportedApiVersionsSummary(
        SupportedCoreApiVersions(config.consensus_version, tuple(core_api)), modules
    )


def _discover(
    client_api: Sequence[ApiVersion], peers: Sequence[tuple[int, Sequence[ApiVersion]]]
) -> tuple[ApiVersion, int] | None:
    """Steps 2 and 3 over guardians whose consensus already matched: (version, supporters)."""
    best: ApiVersion | None = None
    best_count = 0
    for wanted in client_api:
        count = sum(
            1 for _, api in peers if (m := _minor_for(api, wanted.major)) is not None and wanted.minor <= m
        )
        if best_count < count:
            best, best_count = wanted, count
    if best is None:
        return None
    minors = [m for _, api in peers if (m := _minor_for(api, best.major)) is not None and best.minor <= m]
    return ApiVersion(best.major, min(minors)), best_count


def _core_candidates(
    client: SupportedApiVersionsSummary,
    peers: Mapping[int, SupportedApiVersionsSummary],
    rule: ConsensusMatch,
) -> list[tuple[int, Sequence[ApiVersion]]]:
    return [
        (p, s.core.api)
        for p, s in peers.items()
        if rule.matches(client.core.core_consensus, s.core.core_consensus)
    ]


def _module_candidates(
    instance: int,
    ours: SupportedModuleApiVersions,
    peers: Mapping[int, SupportedApiVersionsSummary],
    rule: ConsensusMatch,
) -> list[tuple[int, Sequence[ApiVersion]]]:
    out: list[tuple[int, Sequence[ApiVersion]]] = []
    for peer, summary in peers.items():
        theirs = summary.modules.get(instance)
        if (
            theirs is not None
            and rule.matches(ours.core_consensus, theirs.core_consensus)
            and rule.matches(ours.module_consensus, theirs.module_consensus)
        ):
            out.append((peer, theirs.api))
    return out


def discover_common_api_versions_set(
    client: SupportedApiVersionsSummary,
    peers: Mapping[int, SupportedApiVersionsSummary],
    rule: ConsensusMatch = ConsensusMatch.EXACT,
    min_supporters: int = 1,
) -> ApiVersionSet:
    """Upstream's choice (steps 1-4); a version needs `min_supporters` compatible guardians."""
    core = _discover(client.core.api, _core_candidates(client, peers, rule))
    if core is None or core[1] < min_supporters:
        raise IncompatibleVersions("could not find a common core API version with the federation")
    modules: dict[int, ApiVersion] = {}
    for instance, ours in sorted(client.modules.items()):
        found = _discover(ours.api, _module_candidates(instance, ours, peers, rule))
        if found is not None and found[1] >= min_supporters:
            modules[instance] = found[0]
    return ApiVersionSet(core[0], modules)


def negotiate(
    client: SupportedApiVersionsSummary,
    peers: Mapping[int, SupportedApiVersionsSummary],
    num_peers: int,
    rule: ConsensusMatch = ConsensusMatch.EXACT,
) -> ApiVersionSet:
    """Our rule: answers from a threshold of guardians, versions served by a threshold."""
    needed = threshold(num_peers)
    if len(peers) < needed:
        raise ThresholdNotReached(
            f"only {len(peers)} of {num_peers} guardians told their versions, need {needed}"
        )
    return discover_common_api_versions_set(client, peers, rule, min_supporters=needed)
