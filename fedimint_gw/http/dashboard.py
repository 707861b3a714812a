"""The read-only web dashboard: one server-rendered HTML page, and its health as JSON.

Served on its own listener (`fedimint-gw-dashboard-bind`, off by default). Without a token it
may only listen on a loopback address (config.py refuses anything else); with
`fedimint-gw-dashboard-token`, every request must carry it (`Authorization: Bearer <token>` or
`?token=<token>`). No script, no form, nothing loaded from elsewhere: styles and SVG charts are
inline, and the Content-Security-Policy forbids the rest. Every value is HTML-escaped: federation
names and errors come from the outside world.
"""

from __future__ import annotations

import datetime
import hmac
from collections.abc import Awaitable, Callable
from html import escape
from typing import Protocol

from aiohttp import web

from fedimint_gw.http.charts import Series, bar_chart
from fedimint_gw.http.dashboard_model import DashboardView, FederationRow, PaymentRow, PeerRow

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REFRESH_SECONDS = 30
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'none'; form-action 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2330;background:#f7f8fa}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:.6em}
th,td{border:1px solid #d9dde5;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eef1f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.mono{font-family:ui-monospace,monospace;font-size:.9em}
#health{padding:.6em 1em;border-radius:6px;margin:.6em 0}
#health[data-state=ok]{background:#e3f6e8}#health[data-state=degraded]{background:#fff4d6}
#health[data-state=down]{background:#fde2e2}
dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;margin:.4em 0}dt{color:#5b6475}
.charts{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;background:#fff;padding:.5em;border:1px solid #d9dde5}
.axis{stroke:#8a93a5}.tick{font-size:10px;fill:#5b6475}.bar.volume{fill:#3a7bd5}
.bar.p50{fill:#36a269}.bar.p90{fill:#e08a1e}.legend{margin-left:1em;font-size:.85em}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em}
.swatch.volume{background:#3a7bd5}.swatch.p50{background:#36a269}.swatch.p90{background:#e08a1e}
.empty{color:#5b6475;font-style:italic}
"""


class DashboardSource(Protocol):
    """What the dashboard reads (implemented by `services.dashboard.DashboardService`)."""

    async def dashboard(self) -> DashboardView: ...


def create_dashboard_app(
    source: DashboardSource, token: str | None, log: Callable[[str, str], None]
) -> web.Application:
    """The dashboard's aiohttp application; `token` None means loopback-only, no token asked."""

    def authorized(request: web.Request) -> bool:
        if token is None:
            return True
        given = request.query.get("token", "")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[len("Bearer ") :]
        return hmac.compare_digest(given.encode(), token.encode())

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not authorized(request):
            log(f"dashboard: refused {request.method} {request.path} without the right token", "info")
            return web.Response(
                status=401, text="401: the dashboard token is missing or wrong\n", headers=HEADERS
            )
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return web.Response(status=exc.status, text=f"{exc.status}: {exc.reason}\n", headers=HEADERS)
        except Exception as exc:
            log(f"dashboard {request.path}: unexpected {exc!r}", "error")
            return web.Response(
                status=500, text="500: internal error; see the lightningd log\n", headers=HEADERS
            )

    async def page(request: web.Request) -> web.StreamResponse:
        view = await source.dashboard()
        return web.Response(text=render(view), content_type="text/html", charset="utf-8", headers=HEADERS)

    async def health(request: web.Request) -> web.StreamResponse:
        h = (await source.dashboard()).health
        body = {"state": h.state.value, "problems": list(h.problems), "version": h.version}
        return web.json_response(body, status=200 if h.state.value != "down" else 503, headers=HEADERS)

    app = web.Application(middlewares=[guard], client_max_size=1024)
    app.router.add_get("/", page)
    app.router.add_get("/health", health)
    return app


def render(view: DashboardView) -> str:
    """The whole page for `view`."""
    h = view.health
    problems = "".join(f"<li>{escape(p)}</li>" for p in h.problems)
    node = h.node_id or "unavailable"
    return "".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>fedimint-gw {escape(h.alias or node[:16])}</title><style>{STYLE}</style></head><body>",
            f"<h1>fedimint-gw <span class='mono'>{escape(h.version)}</span></h1>",
            f'<section id="health" data-state="{escape(h.state.value)}"><strong id="health-state">'
            f"{escape(h.state.value.upper())}</strong>",
            f'<ul id="problems">{problems}</ul>' if problems else "",
            (
                f'<p id="restored">Restored from a backup taken {_time(h.restored_from)}: ecash spent '
                "since then is refused by its federation and retired when met.</p>"
                if h.restored_from is not None
                else ""
            ),
            "<dl>",
            _dd("node", f"<span class='mono' id='node-id'>{escape(node)}</span> {escape(h.alias)}"),
            _dd("network / block", f"{escape(h.network)} / {escape(_opt(h.block_height))}"),
            _dd("lightningd", escape(h.lightning_version or "unavailable")),
            _dd("Lightning spendable / receivable", f"{_sat(h.spendable_msat)} / {_sat(h.receivable_msat)}"),
            _dd(
                "federations connected",
                f"<span id='feds-connected'>{h.federations_connected}</span> of {h.federations_total}",
            ),
            _dd("active peers", str(h.peers_active)),
            _dd("payments in flight", f"<span id='in-flight'>{h.payments_in_flight}</span>"),
            _dd("database", f"<span class='mono'>{escape(h.database)}</span> (schema {h.schema_version})"),
            _dd("page taken", _time(view.generated_at)),
            "</dl></section>",
            "<h2>Federations</h2>",
            _federations(view.federations),
            "<h2>Volume and latency (succeeded payments, last 14 days, UTC)</h2>",
            _charts(view),
            "<h2>Recent payments</h2>",
            _payments(view.payments),
            "<h2>Peers and their ledgers</h2>",
            _peers(view.peers),
            "</body></html>",
        ]
    )


def _federations(rows: tuple[FederationRow, ...]) -> str:
    if not rows:
        return '<p class="empty" id="federations-empty">No federation joined yet (fedimint-connect).</p>'
    head = _head("name", "federation id", "protocol", "API", "scid", "ecash", "fees", "limits", "status")
    body = "".join(
        f'<tr data-federation-id="{escape(f.federation_id)}">'
        f'<td class="name">{escape(f.name)}</td><td class="mono">{escape(f.federation_id[:16])}…</td>'
        f'<td class="protocol">{escape(f.protocol)}</td><td class="api-version">{escape(f.api_version)}</td>'
        f'<td class="mono">{escape(f.scid)}</td>'
        f'<td class="num ecash" data-msat="{f.ecash_msat}">{_sat(f.ecash_msat)}</td>'
        f'<td class="fees">{f.fee_base_msat:,} msat + {f.fee_ppm:,} ppm</td>'
        f'<td class="limits">{escape(f.limits)}</td>'
        f'<td class="status">{escape(f.status)}, {escape(f.registration)}'
        f"{'<br>' + escape(f.error) if f.error else ''}</td></tr>"
        for f in rows
    )
    return f'<table id="federations">{head}{body}</table>'


def _payments(rows: tuple[PaymentRow, ...]) -> str:
    if not rows:
        return '<p class="empty" id="payments-empty">No payment yet.</p>'
    head = _head("when", "kind", "state", "amount", "fee", "federation", "latency", "error")
    body = "".join(
        f'<tr data-payment-id="{escape(p.payment_id)}"><td>{_time(p.created_at)}</td>'
        f'<td class="kind">{escape(p.kind)}</td><td class="state">{escape(p.state)}</td>'
        f'<td class="num amount" data-msat="{p.amount_msat}">{_sat(p.amount_msat)}</td>'
        f'<td class="num">{_sat(p.fee_msat)}</td><td class="mono">{escape(p.federation_id[:16])}</td>'
        f'<td class="num">{"" if p.elapsed_ms is None else f"{p.elapsed_ms:,} ms"}</td>'
        f"<td>{escape(p.error)}</td></tr>"
        for p in rows
    )
    return f'<table id="payments">{head}{body}</table>'


def _peers(rows: tuple[PeerRow, ...]) -> str:
    if not rows:
        return '<p class="empty" id="peers-empty">No peer gateway (fedimint-peer-add).</p>'
    head = _head(
        "peer",
        "status",
        "balance (+: peer owes us)",
        "credit granted / used",
        "credit received / used",
        "ledger",
        "last seen",
    )
    body = "".join(
        f'<tr data-node-id="{escape(p.node_id)}"><td class="mono">{escape(p.node_id[:16])}…<br>'
        f'{escape(p.url)}</td><td class="status">{escape(p.status)}</td>'
        f'<td class="num balance" data-msat="{p.balance_msat}">{_sat(p.balance_msat)}</td>'
        f'<td class="num">{_sat(p.credit_limit_msat)} / {_sat(p.credit_used_msat)}</td>'
        f'<td class="num">{_sat(p.peer_credit_limit_msat)} / {_sat(p.peer_credit_used_msat)}</td>'
        f'<td class="ledger-status">{escape(p.ledger_status)}</td><td>{_time(p.last_seen)}</td></tr>'
        for p in rows
    )
    ledgers = "".join(_ledger(p) for p in rows)
    return f'<table id="peers">{head}{body}</table>{ledgers}'


def _ledger(p: PeerRow) -> str:
    title = f"<h3>Ledger with {escape(p.node_id[:16])}… (newest {len(p.entries)})</h3>"
    if not p.entries:
        return f'{title}<p class="empty ledger" data-node-id="{escape(p.node_id)}">No entry yet.</p>'
    rows = "".join(
        f'<tr><td class="mono">{escape(e.entry_id)}</td>'
        f'<td class="num" data-msat="{e.delta_msat}">{_sat(e.delta_msat)}</td>'
        f"<td>{_time(e.created_at)}</td></tr>"
        for e in p.entries
    )
    head = _head("entry", "delta", "when")
    return f'{title}<table class="ledger" data-node-id="{escape(p.node_id)}">{head}{rows}</table>'


def _charts(view: DashboardView) -> str:
    labels = [d.day for d in view.days]
    volume = bar_chart(
        "volume-chart",
        "Volume per day",
        "sat",
        labels,
        [Series("volume", "volume", tuple(d.volume_msat / 1000 for d in view.days))],
    )
    latency = bar_chart(
        "latency-chart",
        "Latency per day",
        "ms",
        labels,
        [
            Series("p50", "p50", tuple(d.latency_ms_p50 for d in view.days)),
            Series("p90", "p90", tuple(d.latency_ms_p90 for d in view.days)),
        ],
    )
    return f'<div class="charts">{volume}{latency}</div>'


def _head(*names: str) -> str:
    return "<tr>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"


def _dd(term: str, html_value: str) -> str:
    return f"<dt>{escape(term)}</dt><dd>{html_value}</dd>"


def _sat(msat: int | None) -> str:
    if msat is None:
        return "unavailable"
    sat, rest = divmod(abs(msat), 1000)
    sign = "-" if msat < 0 else ""
    return f"{sign}{sat:,}{f'.{rest:03d}'.rstrip('0') if rest else ''} sat"


def _time(ts: int | None) -> str:
    if ts is None:
        return "never"
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _opt(value: int | None) -> str:
    return "unavailable" if value is None else f"{value:,}"
