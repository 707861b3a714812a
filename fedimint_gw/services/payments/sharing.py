"""Waiting together: per-key locks for concurrent sends, and one reading shared by many waiters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class SharedReading:
    """One reading shared by every caller for `max_age` seconds: many sends resumed at start
    wait for the channels together with one `listpeerchannels` a second, not one each. A failed
    reading is shared the same way (each caller gets the error), so a slow failure is not
    waited for once per caller."""

    def __init__(self, read: Callable[[], Awaitable[int]], max_age: float) -> None:
        self._read = read
        self._max_age = max_age
        self._lock = asyncio.Lock()
        self._taken: tuple[float, int | Exception] | None = None

    async def get(self) -> int:
        """The value, read again only when the last reading is `max_age` old."""
        async with self._lock:
            now = asyncio.get_running_loop().time()
            if self._taken is None or now - self._taken[0] >= self._max_age:
                try:
                    self._taken = (now, await self._read())
                except Exception as exc:
                    self._taken = (now, exc)
            value = self._taken[1]
        if isinstance(value, Exception):
            raise value
        return value
