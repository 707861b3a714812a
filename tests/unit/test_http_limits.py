"""The public server's bounds (issue 15): the rate limiter (finding 1: per client, refilled
over time, a table that stays bounded however many clients come) and the connection cap
(finding 4: the longest-idle connection makes room, busy ones are never cut)."""

from __future__ import annotations

from fedimint_gw.http.limits import ConnectionGuard, HttpLimits, RateLimiter, client_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_gets_its_burst_then_the_sustained_rate() -> None:
    clock = Clock()
    rate = RateLimiter(HttpLimits(rate_per_second=2.0, burst=5), clock)
    assert [rate.allow("a") for _ in range(7)] == [True] * 5 + [False] * 2
    assert rate.allow("b")  # another client has its own bucket
    clock.now += 1.0  # two tokens back
    assert [rate.allow("a") for _ in range(3)] == [True, True, False]


def test_the_table_of_clients_stays_bounded() -> None:
    clock = Clock()
    rate = RateLimiter(HttpLimits(rate_per_second=1.0, burst=1, max_clients=100), clock)
    for i in range(2_000):
        rate.allow(f"10.0.{i // 256}.{i % 256}")
    assert len(rate) == 100


def test_zero_rate_means_no_limit() -> None:
    rate = RateLimiter(HttpLimits(rate_per_second=0.0, burst=1), Clock())
    assert all(rate.allow("a") for _ in range(1000))


def test_clients_are_ipv4_addresses_or_ipv6_slash_64s() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key(None) == "unknown"


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_full_server_makes_room_by_closing_the_longest_idle_connection() -> None:
    clock = Clock()
    guard = ConnectionGuard(HttpLimits(max_connections=3), clock)
    conns = [FakeTransport() for _ in range(3)]
    for c in conns:
        clock.now += 1
        assert guard.admit(c)  # type: ignore[arg-type]
    guard.begin(conns[0])  # busy: a payment in progress is never cut
    newcomer = FakeTransport()
    assert guard.admit(newcomer)  # type: ignore[arg-type]
    assert [c.closed for c in conns] == [False, True, False]  # the idle one waiting longest
    assert guard.open_connections == 3


def test_a_server_whose_connections_are_all_busy_refuses_the_next() -> None:
    guard = ConnectionGuard(HttpLimits(max_connections=2), Clock())
    conns = [FakeTransport() for _ in range(2)]
    for c in conns:
        assert guard.admit(c)  # type: ignore[arg-type]
        guard.begin(c)
    assert not guard.admit(FakeTransport())  # type: ignore[arg-type]
    assert not any(c.closed for c in conns)
    guard.end(conns[1])
    assert guard.admit(FakeTransport())  # type: ignore[arg-type]
    assert conns[1].closed and not conns[0].closed
