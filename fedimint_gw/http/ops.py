"""The operator's HTTP listener (`fedimint-gw-metrics-bind`): `/metrics` and `/health`.

Separate from the public API so it can stay on loopback or a monitoring network. Serves:
- `GET /metrics`: Prometheus exposition text;
- `GET /health`: readiness as JSON, HTTP 200 when ready, 503 when not (the body says why);
- `GET /health/live`: liveness only (200 while the loop and database answer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web


class OpsSource(Protocol):
    """What the listener serves (implemented by `services.ops.OpsService`)."""

    async def metrics(self) -> tuple[bytes, str]:
        """(exposition text, content type)."""
        ...

    async def health(self) -> tuple[bool, bool, dict[str, Any]]:
        """(live, ready, JSON body)."""
        ...


def create_ops_app(source: OpsSource, log: Callable[[str, str], None]) -> web.Application:
    """Build the aiohttp application of the operator's listener."""

    async def metrics(request: web.Request) -> web.StreamResponse:
        try:
            body, content_type = await source.metrics()
        except Exception as exc:
            log(f"metrics scrape failed: {exc!r}", "warn")
            return web.Response(status=500, text="metrics unavailable; see the gateway log\n")
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = content_type
        return resp

    async def health(request: web.Request) -> web.StreamResponse:
        try:
            live, ready, body = await source.health()
        except Exception as exc:
            log(f"health check failed: {exc!r}", "warn")
            return web.json_response({"status": "down", "live": False, "ready": False}, status=503)
        if request.path.endswith("/live"):
            return web.json_response({"live": live}, status=200 if live else 503)
        return web.json_response(body, status=200 if ready else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    app.router.add_get("/health/live", health)
    return app
