"""Bounds on what strangers can take from the public HTTP server: requests and connections.

- `RateLimiter`: a token bucket per client (`client_key`: an IPv4 address or an IPv6 /64);
  a table of bounded size (the least
  recently seen client is forgotten first, which only ever gives it a full bucket again).
- `ConnectionGuard`: at most `max_connections` open connections; when the cap is reached,
  the connection idle the longest (no request in progress) is closed to make room for the
  new one, and only when every connection has a request in progress is the new one refused.
  A request in progress (a send may wait minutes for its payment) is never cut.
- `idle_timeout` is aiohttp's keep-alive timeout: a connection that sends no complete request
  for that long (new, between requests, or trickling its headers) is closed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MonotonicClock = Callable[[], float]


@dataclass(frozen=True)
class HttpLimits:
    """The public server's bounds (documented in docs/operator-guide.md, "Limits and hostile input")."""

    rate_per_second: float = 10.0  # requests a client may make per second, sustained; 0: no limit
    burst: int = 50  # requests a client may make at once after a quiet period
    max_clients: int = 10_000  # client addresses remembered by the rate limiter
    max_connections: int = 256  # open connections at once
    idle_timeout: float = 15.0  # seconds a connection may stay open without a request in progress


def client_key(remote: str | None) -> str:
    """Whom a request counts against: its IPv4 address, or its IPv6 /64 (one subscriber
    usually holds a whole /64, so counting single IPv6 addresses would be no limit)."""
    if not remote:
        return "unknown"
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


class RateLimiter:
    """Token buckets per key (the client's address)."""

    def __init__(self, limits: HttpLimits, clock: MonotonicClock = time.monotonic) -> None:
        self._rate = limits.rate_per_second
        self._burst = float(limits.burst)
        self._max = limits.max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def allow(self, key: str) -> bool:
        """Take one token from `key`'s bucket; False when it is empty (answer 429)."""
        if self._rate <= 0:
            return True
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self) -> int:
        """Seconds after which one request is allowed again (for the Retry-After header)."""
        return max(1, int(1.0 / self._rate + 0.999)) if self._rate > 0 else 1

    def __len__(self) -> int:
        return len(self._buckets)


class _Conn:
    __slots__ = ("busy", "idle_since", "transport")

    def __init__(self, transport: asyncio.BaseTransport, now: float) -> None:
        self.transport = transport
        self.busy = 0  # requests in progress
        self.idle_since = now


class ConnectionGuard:
    """Wraps the server's protocol factory to count, cap and time out connections; the app's
    middleware reports when requests begin and end (`begin`, `end`)."""

    def __init__(self, limits: HttpLimits, clock: MonotonicClock = time.monotonic) -> None:
        self._max = limits.max_connections
        self._idle = limits.idle_timeout
        self._clock = clock
        self._conns: dict[asyncio.BaseTransport, _Conn] = {}

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for `loop.create_server` that guards `factory`'s protocols."""
        return lambda: _Guarded(self, factory())

    def begin(self, transport: Any) -> None:
        conn = self._conns.get(transport)
        if conn is not None:
            conn.busy += 1

    def end(self, transport: Any) -> None:
        conn = self._conns.get(transport)
        if conn is not None:
            conn.busy = max(0, conn.busy - 1)
            conn.idle_since = self._clock()

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        """Count a new connection; make room by closing the longest-idle one when full."""
        now = self._clock()
        if len(self._conns) >= self._max:
            idle = [c for c in self._conns.values() if c.busy == 0]
            if not idle:
                return False
            self._close(min(idle, key=lambda c: c.idle_since))
        self._conns[transport] = _Conn(transport, now)
        return True

    def forget(self, transport: asyncio.BaseTransport) -> None:
        self._conns.pop(transport, None)

    def _close(self, conn: _Conn) -> None:
        self._conns.pop(conn.transport, None)
        conn.transport.close()


class _Guarded(asyncio.Protocol):
    """Passes every event to the wrapped protocol, once the guard admitted the connection."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._guard.admit(transport):
            transport.abort() if isinstance(transport, asyncio.Transport) else transport.close()
            return
        self._transport = transport
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:
            return
        self._guard.forget(self._transport)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._transport is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._transport is not None else None

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()
