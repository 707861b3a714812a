"""Where the time goes in each in-process flow, measured with cProfile.

Only the gateway's timed step is profiled (the federations run in their own processes, so
their CPU is not in the profile: waiting for them is). Every thread started while profiling
(aiosqlite's database thread) gets its own profiler, so database time is measured in the
thread that spends it. Functions are put in buckets by file (self time); waiting in the event
loop's `epoll.poll` is the time the gateway was idle, i.e. waiting for a federation or for its
database thread. Round trips are counted from the aiohttp call counts.
"""

from __future__ import annotations

import cProfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

BUCKETS = (
    "crypto",
    "database (loop side)",
    "HTTP/WebSocket + JSON",
    "asyncio machinery",
    "gateway logic",
    "Lightning (fake node)",
    "other",
)
_IDLE = (
    "method 'poll' of 'select.epoll'",
    "method 'acquire' of '_thread.lock'",
    "select.select",
    "method 'get' of '_queue.SimpleQueue'",
)


def bucket_of(filename: str, funcname: str) -> str | None:
    """The bucket of one profiled function (None: the thread was idle, waiting)."""
    where = f"{filename}:{funcname}"
    if any(idle in where for idle in _IDLE):
        return None
    if "sqlite3" in where or "/aiosqlite/" in filename or "/store/" in filename:
        return "database (loop side)"
    if (
        "/crypto/" in filename
        or "coincurve" in where
        or "secp256k1" in where
        or "_hashlib" in where
        or "_cffi_backend" in where
        or "hashlib" in filename
    ):
        return "crypto"
    if any(k in where for k in ("/aiohttp/", "/yarl/", "/multidict/", "/json/", "_json", "socket", "ssl")):
        return "HTTP/WebSocket + JSON"
    if "/asyncio/" in filename or "selectors" in filename or "_asyncio" in where:
        return "asyncio machinery"
    if "fake_node" in filename:
        return "Lightning (fake node)"
    if "/fedimint_gw/" in filename:
        return "gateway logic"
    return "other"


Key = tuple[str, str]  # (file name, function name)


def _entries(prof: cProfile.Profile) -> dict[Key, tuple[float, int]]:
    """Self time (s) and call count per function, read without stopping the profiler."""
    out: dict[Key, tuple[float, int]] = {}
    for entry in prof.getstats():
        code = entry.code
        key = ("~", code) if isinstance(code, str) else (code.co_filename, code.co_name)
        t, n = out.get(key, (0.0, 0))
        out[key] = (t + entry.inlinetime, n + entry.callcount)
    return out


class ThreadProfilers:
    """Profiles every thread started after `install()` (aiosqlite's database thread) for its
    whole life; `snapshot()` reads their totals so a phase is the difference of two snapshots."""

    def __init__(self) -> None:
        self._profs: list[cProfile.Profile] = []

    def install(self) -> None:
        def bootstrap(frame: Any, event: str, arg: Any) -> None:
            prof = cProfile.Profile()
            self._profs.append(prof)
            prof.enable()  # replaces this bootstrap for the new thread

        threading.setprofile(bootstrap)

    def uninstall(self) -> None:
        threading.setprofile(None)

    def snapshot(self) -> dict[Key, tuple[float, int]]:
        total: dict[Key, tuple[float, int]] = {}
        for prof in list(self._profs):
            for key, (t, n) in _entries(prof).items():
                t0, n0 = total.get(key, (0.0, 0))
                total[key] = (t0 + t, n0 + n)
        return total


@dataclass
class Profiled:
    """One profiled phase: the main thread's functions, the other threads' (difference of two
    snapshots), and the phase's wall time."""

    main: dict[Key, tuple[float, int]]
    threads: dict[Key, tuple[float, int]]
    wall: float


@contextmanager
def profile_phase(threads: ThreadProfilers, result: list[Profiled]) -> Iterator[None]:
    """Profile the block in this thread, and the other threads over the same span."""
    before = threads.snapshot()
    main = cProfile.Profile()
    start = time.perf_counter()
    main.enable()
    try:
        yield
    finally:
        main.disable()
        wall = time.perf_counter() - start
        after = threads.snapshot()
        diff = {
            k: (t - before.get(k, (0.0, 0))[0], n - before.get(k, (0.0, 0))[1]) for k, (t, n) in after.items()
        }
        result.append(Profiled(_entries(main), diff, wall))


def breakdown(profiled: Profiled, payments: int) -> dict[str, Any]:
    """Milliseconds per payment: the main thread's busy time by bucket and its idle time, the
    database thread's busy time, and federation round trips per payment.

    The database thread (aiosqlite's worker) runs sqlite in C calls cProfile cannot see
    individually, so its busy time is the phase's wall time minus its measured waiting in
    `SimpleQueue.get`. While the main thread is idle it waits either for that thread or for a
    federation, so `waiting for federations` = main idle - database busy (one payment at a time).
    """
    per: dict[str, float] = dict.fromkeys(BUCKETS, 0.0)
    idle = 0.0
    http = ws = 0
    for (filename, funcname), (tottime, calls) in profiled.main.items():
        b = bucket_of(filename, funcname)
        if b is None:
            idle += tottime
        else:
            per[b] += tottime
        if filename.endswith("aiohttp/client.py") and funcname == "_request":
            http += calls
        if filename.endswith("aiohttp/client_ws.py") and funcname in ("send_str", "send_json"):
            ws += calls
    db_idle = sum(t for (f, fn), (t, _n) in profiled.threads.items() if bucket_of(f, fn) is None)
    db_busy = max(profiled.wall - db_idle, 0.0) if profiled.threads else 0.0
    n = max(payments, 1)
    ms = 1000.0 / n
    return {
        "wall_ms": profiled.wall * ms,
        "main_busy_ms": {k: v * ms for k, v in per.items()},
        "main_idle_ms": idle * ms,
        "database_thread_busy_ms": db_busy * ms,
        "waiting_for_federations_ms": max(idle - db_busy, 0.0) * ms,
        "http_requests": http / n,
        "ws_requests": ws / n,
        "top_functions": _top(profiled, 8, n),
    }


def _top(profiled: Profiled, count: int, payments: int) -> list[dict[str, Any]]:
    """The busiest non-idle functions of the main thread by self time, per payment."""
    rows = [
        (tottime, f"{filename.rsplit('/', 2)[-1]}:{funcname}", calls)
        for (filename, funcname), (tottime, calls) in profiled.main.items()
        if bucket_of(filename, funcname) is not None
    ]
    rows.sort(reverse=True)
    return [
        {
            "function": name,
            "ms_per_payment": round(t / payments * 1000, 3),
            "calls_per_payment": nc / payments,
        }
        for t, name, nc in rows[:count]
    ]
