#!/usr/bin/env python3
"""A test plugin for a payee node: its `htlc_accepted` hook holds the HTLCs of the payment
hashes named with `hold-htlc` (the hook stays unanswered) until `release-htlc` lets them
through (`action=resolve`: lightningd settles them with its invoice) or fails them
(`action=fail`: temporary_node_failure). `held-htlcs` counts what is held."""

from __future__ import annotations

import threading
from typing import Any

from pyln.client import Plugin
from pyln.client.plugin import Request

RESULTS = {
    "resolve": {"result": "continue"},
    "fail": {"result": "fail", "failure_message": "2002"},  # temporary_node_failure
}

plugin = Plugin()
lock = threading.Lock()
to_hold: set[str] = set()
held: dict[str, list[Request]] = {}


@plugin.method("hold-htlc")
def hold_htlc(plugin: Plugin, payment_hash: str) -> dict[str, Any]:
    """Hold every HTLC of `payment_hash` arriving from now on, until `release-htlc`."""
    with lock:
        to_hold.add(payment_hash)
    return {"holding": payment_hash}


@plugin.method("held-htlcs")
def held_htlcs(plugin: Plugin) -> dict[str, Any]:
    """How many HTLCs are held, by payment hash."""
    with lock:
        return {"held": {h: len(requests) for h, requests in held.items()}}


@plugin.method("release-htlc")
def release_htlc(plugin: Plugin, payment_hash: str, action: str) -> dict[str, Any]:
    """Answer the held HTLCs of `payment_hash` (`action`: resolve or fail) and stop holding it."""
    result = RESULTS[action]
    with lock:
        to_hold.discard(payment_hash)
        requests = held.pop(payment_hash, [])
    for request in requests:
        request.set_result(result)
    return {"released": len(requests)}


@plugin.async_hook("htlc_accepted")
def on_htlc_accepted(
    onion: Any, htlc: dict[str, Any], request: Request, plugin: Plugin, **kwargs: Any
) -> None:
    with lock:
        if htlc["payment_hash"] in to_hold:
            held.setdefault(htlc["payment_hash"], []).append(request)
            return
    request.set_result({"result": "continue"})


plugin.run()
