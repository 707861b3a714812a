"""Queries to a whole federation: threshold agreement, first verified answer, every answer.

- `threshold`: ask every guardian at once; an answer counts when a threshold of guardians
  returned identical JSON (compared canonically). Guardians that fail, time out or stall are
  left behind; as soon as no answer can still reach the threshold the query fails with
  ThresholdNotReached, naming what each guardian did. Upstream's `ThresholdConsensus` also
  retries failed guardians; here a failed guardian is retried by the next query (its
  connection reopens), not within the same one.
- `first_valid`: for self-verifying facts (a preimage matching its hash, a signature share
  that verifies): the first answer the caller's verifier accepts wins.
- `each`: every guardian's answer or error (for version discovery and share collection).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

from fedimint_gw.fedimint.config import ClientConfig, threshold
from fedimint_gw.fedimint.errors import (
    FedimintProtocolError,
    GuardianRpcError,
    NoValidAnswer,
    ThresholdNotReached,
)
from fedimint_gw.fedimint.transport import GuardianConnection, TransportSettings, module_method

T = TypeVar("T")


@dataclass(frozen=True)
class PeerAnswer:
    """One guardian's answer to a query: a JSON result, or the error that replaced it."""

    peer_id: int
    result: object = None
    error: FedimintProtocolError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class FederationApi:
    """Guardian connections of one federation, and the queries over them."""

    def __init__(
        self,
        endpoints: Mapping[int, str],
        session: aiohttp.ClientSession,
        settings: TransportSettings | None = None,
        *,
        api_secret: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not endpoints:
            raise ValueError("a federation has at least one guardian")
        self._settings = settings or TransportSettings()
        self.peers = {
            peer: GuardianConnection(
                peer, url, session, self._settings, api_secret=api_secret, monotonic=monotonic
            )
            for peer, url in sorted(endpoints.items())
        }

    @classmethod
    def from_config(
        cls,
        config: ClientConfig,
        session: aiohttp.ClientSession,
        settings: TransportSettings | None = None,
        *,
        api_secret: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> FederationApi:
        urls = {peer: p.url for peer, p in config.api_endpoints.items()}
        return cls(urls, session, settings, api_secret=api_secret, monotonic=monotonic)

    @property
    def threshold(self) -> int:
        return threshold(len(self.peers))

    async def request_peer(
        self,
        peer_id: int,
        method: str,
        params: object = None,
        *,
        auth: str | None = None,
        timeout: float | None = None,
    ) -> object:
        """One guardian's answer (GuardianRpcError if it fails)."""
        connection = self.peers.get(peer_id)
        if connection is None:
            raise GuardianRpcError(f"no guardian {peer_id} in this federation")
        return await connection.request(method, params, auth=auth, timeout=timeout)

    async def _ask(
        self, peer_id: int, method: str, params: object, auth: str | None, timeout: float | None
    ) -> PeerAnswer:
        try:
            result = await self.request_peer(peer_id, method, params, auth=auth, timeout=timeout)
        except FedimintProtocolError as exc:
            return PeerAnswer(peer_id, error=exc)
        return PeerAnswer(peer_id, result)

    def _start(
        self, method: str, params: object, auth: str | None, timeout: float | None
    ) -> set[asyncio.Task[PeerAnswer]]:
        return {asyncio.create_task(self._ask(p, method, params, auth, timeout)) for p in self.peers}

    async def each(
        self, method: str, params: object = None, *, auth: str | None = None, timeout: float | None = None
    ) -> dict[int, PeerAnswer]:
        """Every guardian's answer or error, each bounded by the call timeout."""
        answers = await asyncio.gather(*self._start(method, params, auth, timeout))
        return {a.peer_id: a for a in sorted(answers, key=lambda a: a.peer_id)}

    async def threshold_request(
        self,
        method: str,
        params: object = None,
        *,
        auth: str | None = None,
        timeout: float | None = None,
        required: int | None = None,
    ) -> object:
        """The answer a threshold of guardians gave identically."""
        needed = self.threshold if required is None else required
        pending = self._start(method, params, auth, timeout)
        groups: dict[str, list[int]] = {}
        values: dict[str, object] = {}
        failures: dict[int, str] = {}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    answer = task.result()
                    if answer.error is not None:
                        failures[answer.peer_id] = answer.error.message
                        continue
                    key = _canonical(answer.result)
                    groups.setdefault(key, []).append(answer.peer_id)
                    values[key] = answer.result
                    if len(groups[key]) >= needed:
                        return values[key]
                best = max((len(g) for g in groups.values()), default=0)
                if best + len(pending) < needed:
                    break
        finally:
            for task in pending:
                task.cancel()
        disagreeing = {peer: "answered differently" for g in groups.values() for peer in g}
        detail = ", ".join(f"{peer}: {why}" for peer, why in sorted({**disagreeing, **failures}.items()))
        raise ThresholdNotReached(
            f"{method}: no answer reached {needed} of {len(self.peers)} guardians ({detail})"
        )

    async def first_valid(
        self,
        method: str,
        params: object,
        verify: Callable[[int, object], T | None],
        *,
        auth: str | None = None,
        timeout: float | None = None,
    ) -> T:
        """The first answer `verify(peer_id, result)` accepts (returns non-None without raising)."""
        pending = self._start(method, params, auth, timeout)
        reasons: dict[int, str] = {}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    answer = task.result()
                    if answer.error is not None:
                        reasons[answer.peer_id] = answer.error.message
                        continue
                    try:
                        accepted = verify(answer.peer_id, answer.result)
                    except (FedimintProtocolError, ValueError) as exc:
                        reasons[answer.peer_id] = f"failed verification: {exc}"
                        continue
                    if accepted is not None:
                        return accepted
                    reasons[answer.peer_id] = "failed verification"
        finally:
            for task in pending:
                task.cancel()
        detail = ", ".join(f"{peer}: {why}" for peer, why in sorted(reasons.items()))
        raise NoValidAnswer(f"{method}: no guardian gave a valid answer ({detail})")

    async def module_threshold_request(
        self, module_instance_id: int, endpoint: str, params: object = None, *, timeout: float | None = None
    ) -> object:
        """`threshold_request` of a module endpoint (`module_{id}_{endpoint}`)."""
        return await self.threshold_request(
            module_method(module_instance_id, endpoint), params, timeout=timeout
        )

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.peers.values()))
