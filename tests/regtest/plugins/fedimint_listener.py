#!/usr/bin/env python3
"""A test plugin subscribing to fedimint-gw's custom notifications; `fedimint-heard` lists them."""

from __future__ import annotations

import threading
from typing import Any

from pyln.client import Plugin

TOPICS = (
    "fedimint_payment_finished",
    "fedimint_federation_status",
    "fedimint_loss_reported",
    "fedimint_limit_crossed",
)

plugin = Plugin()
heard: list[dict[str, Any]] = []
lock = threading.Lock()


def _subscribe(topic: str) -> None:
    def on_event(**kwargs: Any) -> None:
        kwargs.pop("plugin", None)
        with lock:
            heard.append({"topic": topic, **kwargs})

    plugin.add_subscription(topic, on_event)


for _topic in TOPICS:
    _subscribe(_topic)


@plugin.method("fedimint-heard")
def fedimint_heard(plugin: Plugin) -> dict[str, Any]:
    """Every fedimint-gw notification received so far, as (topic, params)."""
    with lock:
        return {"heard": list(heard)}


plugin.run()
