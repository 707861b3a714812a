from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fedimint_gw.errors import InsufficientFunds
from fedimint_gw.runtime import Bridge, Runtime


class FakeRequest:
    """Records the one answer a pyln request gets."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, Any]] = []
        self.done = threading.Event()

    def set_result(self, result: Any) -> None:
        if self.answers:
            raise ValueError("already answered")
        self.answers.append(("result", result))
        self.done.set()

    def set_exception(self, exc: Exception) -> None:
        if self.answers:
            raise ValueError("already answered")
        self.answers.append(("error", exc))
        self.done.set()

    def wait(self) -> tuple[str, Any]:
        assert self.done.wait(10), "request never answered"
        assert len(self.answers) == 1
        return self.answers[0]


class FakeRpcException(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@pytest.fixture
def bridge() -> Iterator[tuple[Bridge, list[tuple[str, str]]]]:
    runtime = Runtime()
    runtime.start()
    logs: list[tuple[str, str]] = []
    yield Bridge(runtime, lambda m, lvl: logs.append((lvl, m)), FakeRpcException), logs
    runtime.stop()


def test_result_is_answered_from_the_loop_thread(bridge: Any) -> None:
    b, _ = bridge
    req = FakeRequest()

    async def work() -> dict[str, str]:
        return {"thread": threading.current_thread().name}

    b.answer(req, work)
    kind, value = req.wait()
    assert kind == "result" and value == {"thread": "fedimint-gw-loop"}


def test_gateway_error_keeps_code_and_message(bridge: Any) -> None:
    b, logs = bridge
    req = FakeRequest()

    async def work() -> None:
        raise InsufficientFunds("only 5 msat of ecash in federation x")

    b.answer(req, work)
    kind, exc = req.wait()
    assert kind == "error" and exc.code == 2120 and "only 5 msat" in exc.message
    assert [lvl for lvl, _ in logs] == ["info"]  # a refusal: logged, never as an error


def test_unexpected_error_hides_details_and_is_logged(bridge: Any) -> None:
    b, logs = bridge
    req = FakeRequest()

    async def work() -> None:
        raise KeyError("secret-internal-detail")

    b.answer(req, work)
    kind, exc = req.wait()
    assert kind == "error" and exc.code == 2100
    assert "secret-internal-detail" not in exc.message and "Traceback" not in exc.message
    assert logs and logs[0][0] == "error"


def test_hook_always_answers_its_fallback_on_failure(bridge: Any) -> None:
    b, _ = bridge
    req = FakeRequest()
    fallback = {"result": "fail", "failure_message": "2002"}

    async def work() -> dict[str, str]:
        raise RuntimeError("boom")

    b.answer_hook(req, work, fallback)
    assert req.wait() == ("result", fallback)


def test_a_hook_is_left_unanswered_when_the_loop_is_gone() -> None:
    """Issue 14 finding 12: after the loop stopped (shutdown), a hook for a gateway HTLC was
    answered `fail`, although its contract may be funded; lightningd replays it instead."""
    runtime = Runtime()  # not running, as after shutdown stopped it
    logs: list[tuple[str, str]] = []
    b = Bridge(runtime, lambda m, lvl: logs.append((lvl, m)), FakeRpcException)
    req = FakeRequest()

    async def work() -> dict[str, str]:
        return {"result": "continue"}

    b.answer_hook(req, work, {"result": "fail", "failure_message": "2002"})
    assert req.answers == []  # decided synchronously: nothing was or will be answered
    assert logs and "left unanswered" in logs[0][1]
    cmd = FakeRequest()
    b.answer(cmd, work)  # a command still gets its error at once
    assert cmd.wait()[0] == "error"


@pytest.mark.parametrize("how", ["cancelled", "shutdown"])
def test_a_cancelled_hook_is_left_unanswered(bridge: Any, how: str) -> None:
    """Issue 14 finding 4: a cancelled hook (or one stopped by shutdown) answered its fallback
    `fail`, failing an HTLC whose contract may be funded. lightningd replays it instead."""
    import asyncio

    from fedimint_gw.errors import LeaveUnanswered

    b, logs = bridge
    req = FakeRequest()
    ended = threading.Event()

    async def work() -> dict[str, str]:
        try:
            if how == "cancelled":
                raise asyncio.CancelledError()
            raise LeaveUnanswered("the gateway is stopping")
        finally:
            ended.set()

    b.answer_hook(req, work, {"result": "fail", "failure_message": "2002"})
    assert ended.wait(10)
    # The bridge logs once it has decided; it answers nothing.
    for _ in range(200):
        if any("left unanswered" in m for _lvl, m in logs):
            break
        ended.wait(0.01)
    assert any("left unanswered" in m and lvl == "info" for lvl, m in logs)
    assert req.answers == []
