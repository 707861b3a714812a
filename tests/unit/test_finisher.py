"""The background note collector both adapter families share."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fedimint_gw.errors import FederationRejected, FederationUnreachable
from fedimint_gw.federation import finisher
from fedimint_gw.federation.finisher import BackgroundFinisher


async def test_it_keeps_asking_through_refusals_and_errors_and_logs_them(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """devfed's finisher used to end silently on anything but FederationUnreachable (a refusal
    from one guardian among too few answers): the change notes stayed reserved until a restart."""
    monkeypatch.setattr(finisher, "FINISH_PAUSE", 0.001)
    answers: list[Exception | None] = [
        FederationUnreachable("2 of 4 signed"),
        FederationRejected("guardian 1 refused"),
        ValueError("malformed share"),
        None,
    ]
    calls: list[str] = []
    done = asyncio.Event()

    async def finish(operation_id: str) -> None:
        calls.append(operation_id)
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        done.set()

    bg = BackgroundFinisher(finish)
    with caplog.at_level(logging.INFO, logger="fedimint_gw.federation.finisher"):
        bg.start("op-1")
        bg.start("op-1")  # once per operation
        await asyncio.wait_for(done.wait(), 5)
    assert calls == ["op-1"] * 4
    levels = [r.levelname for r in caplog.records]
    assert levels == ["INFO", "WARNING", "ERROR"]
    await asyncio.sleep(0)
    assert not bg.running("op-1")


async def test_nothing_starts_after_close() -> None:
    started: list[str] = []

    async def finish(operation_id: str) -> None:
        started.append(operation_id)
        await asyncio.sleep(3600)

    bg = BackgroundFinisher(finish)
    bg.start("a")
    await asyncio.sleep(0)
    await bg.close()
    assert not bg.running("a")
    bg.start("b")  # a client being replaced after close: no task loops against a closed API
    await asyncio.sleep(0)
    assert started == ["a"] and not bg.running("b")
