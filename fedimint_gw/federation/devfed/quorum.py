"""Threshold answers: what the devfed adapters decide money on (DESIGN.md §3, money rule 1).

One guardian's word decides nothing that moves money. `Quorum.agree` asks every guardian at
once (each with its own deadline), and returns as soon as `threshold` of them gave the same
answer; identical refusals (name and message) count as an answer too (`threshold` guardians saying
`unknown_contract` make a `NotFound`). A guardian that stalls, withholds or answers garbage
is simply not counted. Facts that prove themselves (a preimage whose hash matches) may be
taken from the first guardian that shows one (`verified`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fedimint_gw.errors import FederationUnreachable
from fedimint_gw.federation.devfed.guardians import (
    GuardianKey,
    Guardians,
    RemoteError,
    canonical_json,
    to_gateway_error,
)

T = TypeVar("T")


def _same(value: object) -> str:
    return canonical_json(value).decode()


class Quorum:
    """Threshold reads and submissions over a federation's guardians."""

    def __init__(self, guardians: Guardians) -> None:
        self._guardians = guardians

    @property
    def threshold(self) -> int:
        """How many agreeing guardians decide."""
        return self._guardians.keys.threshold

    async def agree(
        self,
        fn: Callable[[GuardianKey], Awaitable[T]],
        what: str,
        key: Callable[[T], str] = _same,
        verified: Callable[[T], bool] | None = None,
    ) -> T:
        """The answer `threshold` guardians agree on (compared by `key`), or the typed error
        of `threshold` identical refusals; a `verified` answer is taken from any one guardian.

        Raises FederationUnreachable when no threshold agrees among the answers in time.
        """
        guardians = self._guardians
        tasks = {asyncio.ensure_future(guardians.timed(fn, g)): g for g in guardians.keys.guardians}
        votes: dict[str, list[T]] = {}
        refusals: dict[str, list[RemoteError]] = {}
        problems: list[str] = []
        t = self.threshold
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    g = tasks[task]
                    try:
                        answer = task.result()
                    except RemoteError as exc:
                        problems.append(f"guardian {g.peer_id}: {exc}")
                        if not exc.unreachable:
                            refusals.setdefault(f"{exc.name}: {exc.message}", []).append(exc)
                        continue
                    if verified is not None and verified(answer):
                        return answer
                    votes.setdefault(key(answer), []).append(answer)
                for answers in votes.values():
                    if len(answers) >= t:
                        return answers[0]
                for errors in refusals.values():
                    if len(errors) >= t:
                        raise to_gateway_error(errors[0], what)
                largest = max([*(len(v) for v in votes.values()), *(len(r) for r in refusals.values()), 0])
                if largest + len(pending) < t:
                    break  # no answer can reach the threshold any more
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        answered = sum(len(v) for v in votes.values()) + sum(len(r) for r in refusals.values())
        split = f"{len(votes) + len(refusals)} different answers" if answered else "no answers"
        raise FederationUnreachable(
            f"{what}: {answered} of {len(tasks)} guardians answered ({split}), {t} agreeing answers "
            f"needed ({'; '.join(problems) or 'answers disagree'})"
        )
