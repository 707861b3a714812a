"""`Quorum.agree`: money decisions need a threshold of identical guardian answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from fedimint_gw.errors import FederationRejected, FederationUnreachable, NotFound
from fedimint_gw.federation.devfed.guardians import RemoteError
from fedimint_gw.federation.devfed.quorum import Quorum


@dataclass(frozen=True)
class Peer:
    peer_id: int
    url: str


@dataclass(frozen=True)
class Keys:
    guardians: tuple[Peer, ...]
    threshold: int


class FakeGuardians:
    """Four guardians, threshold 3; each answer is a value, an exception, or a stall."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.keys = Keys(tuple(Peer(i, f"g{i}") for i in range(4)), 3)
        self.timeout = timeout

    async def timed(self, fn: Callable[[Peer], Awaitable[Any]], g: Peer) -> Any:
        try:
            return await asyncio.wait_for(fn(g), self.timeout)
        except asyncio.TimeoutError:
            raise RemoteError("guardian_offline", f"{g.url}: stalled") from None


STALL = object()


def answers(*per_guardian: object) -> Callable[[Peer], Awaitable[Any]]:
    async def ask(g: Peer) -> Any:
        answer = per_guardian[g.peer_id]
        if answer is STALL:
            await asyncio.Event().wait()  # never answers
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return ask


def quorum(timeout: float = 5.0) -> Quorum:
    return Quorum(FakeGuardians(timeout))  # type: ignore[arg-type]


async def test_a_threshold_of_identical_answers_decides_and_one_liar_is_outvoted() -> None:
    assert await quorum().agree(answers(1, 1, 999, 1), "height") == 1
    assert await quorum().agree(
        answers({"s": "funded"}, {"s": "funded"}, {"s": "funded"}, {"s": "x"}), "c"
    ) == {"s": "funded"}


async def test_refusals_decide_only_when_a_threshold_gives_the_same_one() -> None:
    unknown = RemoteError("unknown_contract", "no such contract")
    with pytest.raises(NotFound):
        await quorum().agree(answers(unknown, unknown, unknown, {"s": "funded"}), "contract")
    refused = RemoteError("double_spend", "spent")
    assert await quorum().agree(answers(refused, {"txid": "t"}, {"txid": "t"}, {"txid": "t"}), "tx") == {
        "txid": "t"
    }
    with pytest.raises(FederationRejected, match="double_spend"):
        await quorum().agree(answers(refused, refused, refused, STALL), "tx")


async def test_split_or_too_few_answers_are_unknown_not_a_verdict() -> None:
    with pytest.raises(FederationUnreachable, match="agreeing"):
        await quorum().agree(answers(1, 1, 2, 2), "height")
    offline = RemoteError("guardian_offline", "down")
    with pytest.raises(FederationUnreachable):
        await quorum().agree(answers(offline, offline, 5, 5), "height")
    with pytest.raises(FederationUnreachable):  # two refusals are not a threshold
        await quorum().agree(answers(RemoteError("unknown_contract", ""), offline, offline, 7), "c")


async def test_a_stalling_guardian_is_not_waited_for_once_a_threshold_agrees() -> None:
    # With a one-hour per-guardian deadline, only deciding without the staller can finish.
    result = await asyncio.wait_for(quorum(timeout=3600).agree(answers(STALL, 4, 4, 4), "h"), 30)
    assert result == 4


async def test_a_self_verifying_answer_is_taken_from_one_guardian() -> None:
    def good(view: dict[str, str]) -> bool:
        return view.get("preimage") == "ok"

    withheld = {"preimage": ""}
    got = await quorum().agree(answers(withheld, withheld, {"preimage": "ok"}, withheld), "c", verified=good)
    assert got == {"preimage": "ok"}
