"""Adapter discovery and API version negotiation.

Adapters are found in two places: the built-ins the caller passes in (the list in
`federation/builtin.py`; this module imports no adapter) and the Python entry points in group
`fedimint_gw.adapters`, each naming an `AdapterFactory` (`federation/adapter.py`). A third-party package can
so add an adapter for a new federation API major without touching this repository.

Negotiation follows Fedimint's rule: ask every guardian which majors it serves (with the
highest minor of each), and pick the highest major that (a) an installed adapter speaks and
(b) at least `threshold` guardians serve at a minor the adapter can work with.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import aiohttp

from fedimint_gw.errors import FederationUnreachable, IncompatibleFederation
from fedimint_gw.federation.adapter import AdapterFactory
from fedimint_gw.federation.client import ApiVersion

ENTRY_POINT_GROUP = "fedimint_gw.adapters"


def federation_id_of(config: Mapping[str, Any]) -> str:
    """The federation id: sha256 of the canonical JSON of its public config (all versions)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class GuardianVersions:
    """The majors one guardian serves, each with its highest minor."""

    guardian: str
    majors: Mapping[int, int]


def negotiate(
    answers: Sequence[GuardianVersions], threshold: int, adapters: Mapping[int, AdapterFactory]
) -> ApiVersion:
    """Pick the version to speak, or raise IncompatibleFederation naming both sides' versions."""
    if len(answers) < threshold:
        raise FederationUnreachable(
            f"only {len(answers)} guardian(s) answered the version request; {threshold} are needed"
        )
    for major in sorted(adapters, reverse=True):
        adapter = adapters[major]
        minors = [a.majors[major] for a in answers if a.majors.get(major, -1) >= adapter.min_minor]
        if len(minors) >= threshold:
            # The minor every one of a threshold of guardians supports.
            minor = sorted(minors, reverse=True)[threshold - 1]
            return ApiVersion(major, minor)
    offered = sorted({(m, mi) for a in answers for m, mi in a.majors.items()})
    offered_text = ", ".join(f"{m}.{mi}" for m, mi in offered) or "nothing"
    installed = ", ".join(f"{m}.{a.min_minor}+ ({a.name})" for m, a in sorted(adapters.items())) or "none"
    raise IncompatibleFederation(
        f"no common API version: the federation's guardians offer {offered_text} "
        f"(a threshold of {threshold} must agree); installed adapters speak {installed}"
    )


def parse_versions(guardian: str, body: object) -> GuardianVersions:
    """Parse a guardian's `GET /version` answer: {"majors": [{"major": M, "max_minor": m}, ...]}."""
    if not isinstance(body, dict) or not isinstance(body.get("majors"), list):
        raise ValueError("version answer lacks a 'majors' list")
    majors: dict[int, int] = {}
    for item in body["majors"]:
        if not isinstance(item, dict):
            raise ValueError("version entry is not an object")
        major, minor = item.get("major"), item.get("max_minor")
        if not isinstance(major, int) or not isinstance(minor, int) or major < 0 or minor < 0:
            raise ValueError(f"bad version entry {item!r}")
        majors[major] = minor
    return GuardianVersions(guardian, majors)


async def fetch_versions(
    session: aiohttp.ClientSession, guardian_urls: Iterable[str], timeout: float
) -> list[GuardianVersions]:
    """Ask every guardian in parallel; guardians that fail or answer garbage are left out."""

    async def ask(url: str) -> GuardianVersions | None:
        try:
            async with session.get(
                url.rstrip("/") + "/version", timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                if resp.status != 200:
                    return None
                return parse_versions(url, await resp.json())
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return None

    results = await asyncio.gather(*(ask(u) for u in guardian_urls))
    return [r for r in results if r is not None]


def discover_adapters(
    builtins: Iterable[AdapterFactory],
    load_entry_points: Callable[[], Iterable[Any]] | None = None,
    log: Callable[[str, str], None] | None = None,
) -> dict[int, AdapterFactory]:
    """Built-ins plus entry points; an entry point for an already served major replaces it."""
    found: dict[int, AdapterFactory] = {a.major: a for a in builtins}
    eps = load_entry_points() if load_entry_points else metadata.entry_points(group=ENTRY_POINT_GROUP)
    for ep in eps:
        try:
            factory = ep.load()
            major = int(factory.major)
        except Exception as exc:  # a broken third-party package must not stop the gateway
            if log:
                log(f"adapter entry point {getattr(ep, 'name', ep)!r} failed to load: {exc!r}", "warn")
            continue
        found[major] = factory
    return found
