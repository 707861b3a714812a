"""The asyncio loop thread and the bridge from pyln requests to coroutines.

pyln's `Plugin.run()` owns the main thread and reads lightningd's requests one by one.
Every RPC method and hook is registered as a *background* handler: the handler schedules a
coroutine on the loop that `Runtime` runs in a daemon thread and returns at once, and the
coroutine's outcome answers the request later (`request.set_result` is thread-safe).

The bridge guarantees an answer for every request it accepts: a result, a translated
`GatewayError`, or, for a hook, its fallback answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

from fedimint_gw.errors import GatewayError, LeaveUnanswered, NotReady

T = TypeVar("T")


class Answerable(Protocol):
    """The part of pyln's `Request` the bridge uses."""

    def set_result(self, result: Any) -> None: ...

    def set_exception(self, exc: Exception) -> None: ...


Logger = Callable[[str, str], None]


class Runtime:
    """One asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        """Start the loop thread (idempotent) and wait until it runs."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="fedimint-gw-loop", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise NotReady("the gateway's event loop is not running")
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule a coroutine on the loop from any other thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the loop and block the calling (non-loop) thread for its result."""
        return self.submit(coro).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and wait for its thread to end."""
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)


class RpcError(Exception):
    """What the bridge hands to `set_exception`: code and message only, never a traceback."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def translate(exc: BaseException) -> RpcError:
    """Map any exception to a JSON-RPC error. Only GatewayErrors keep their message."""
    if isinstance(exc, GatewayError):
        return RpcError(exc.code, exc.message)
    if isinstance(exc, (ValueError, TypeError)):
        return RpcError(2101, f"invalid parameters: {exc}")
    return RpcError(2100, f"internal error ({type(exc).__name__}); see the lightningd log")


class Bridge:
    """Answers pyln requests with the outcome of coroutines run on the `Runtime`."""

    def __init__(self, runtime: Runtime, log: Logger, make_rpc_exception: Callable[[int, str], Exception]):
        self._runtime = runtime
        self._log = log
        self._make_rpc_exception = make_rpc_exception

    def answer(self, request: Answerable, make: Callable[[], Awaitable[Any]]) -> None:
        """Run `make()` on the loop and answer `request` with its result or a translated error."""

        async def run() -> None:
            try:
                result = await make()
            except Exception as exc:
                err = translate(exc)
                if isinstance(exc, GatewayError):  # a refusal (bad input, ...): info, never error
                    self._log(f"command refused ({type(exc).__name__}): {exc.message}", "info")
                else:
                    self._log(f"unexpected error in a command: {exc!r}", "error")
                outcome: tuple[bool, Any] = (False, err)
            else:
                outcome = (True, result)
            self._deliver(request, outcome)

        self._schedule(request, run)

    def answer_hook(
        self, request: Answerable, make: Callable[[], Awaitable[dict[str, Any]]], fallback: dict[str, Any]
    ) -> None:
        """Run a hook handler and answer its result, or `fallback` if it raises. A handler that
        is cancelled or raises `LeaveUnanswered` (shutdown) leaves the request unanswered:
        lightningd keeps the HTLC and replays it after its restart. Handlers of HTLCs whose
        funding may have been submitted never raise anything else (they keep trying)."""

        async def run() -> None:
            try:
                answer = await make()
            except (asyncio.CancelledError, LeaveUnanswered) as exc:
                self._log(f"hook left unanswered (lightningd replays it after a restart): {exc!r}", "info")
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            except Exception as exc:
                self._log(f"hook handler failed, answering {fallback['result']}: {exc!r}", "error")
                answer = fallback
            self._deliver(request, (True, answer))

        self._schedule(request, run, fallback)

    def _schedule(
        self,
        request: Answerable,
        run: Callable[[], Coroutine[Any, Any, None]],
        fallback: dict[str, Any] | None = None,
    ) -> None:
        coro = run()
        try:
            self._runtime.submit(coro)
        except Exception as exc:  # loop not running (shutting down)
            coro.close()
            if fallback is None:
                self._deliver(request, (False, translate(exc)))
            else:  # a held HTLC whose funding may be submitted must never get `fail`: lightningd replays it
                self._log(f"hook left unanswered: the gateway's loop is not running ({exc!r})", "warn")

    def _deliver(self, request: Answerable, outcome: tuple[bool, Any]) -> None:
        ok, value = outcome
        try:
            if ok:
                request.set_result(value)
            else:
                request.set_exception(self._make_rpc_exception(value.code, value.message))
        except ValueError as exc:  # already answered
            self._log(f"request answered twice: {exc}", "warn")
