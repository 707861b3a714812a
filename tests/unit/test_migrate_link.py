"""Where a migration may send ecash notes: https anywhere, plain http only to this machine."""

from __future__ import annotations

import pytest

from fedimint_gw.services.liquidity.migration import private_link


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://gw.example.com", True),
        ("https://203.0.113.7:8443/base", True),
        ("http://127.0.0.1:3000", True),
        ("http://127.8.9.10", True),
        ("http://[::1]:80", True),
        ("http://localhost:9000", True),
        ("http://gw.example.com", False),
        ("http://10.0.0.5:3000", False),  # a LAN is still a network
        ("http://203.0.113.7", False),
        ("ftp://127.0.0.1", False),
        ("", False),
    ],
)
def test_notes_travel_only_over_https_or_loopback(url: str, allowed: bool) -> None:
    assert private_link(url) is allowed
