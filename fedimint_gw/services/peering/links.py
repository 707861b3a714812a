"""Peer gateways: links, hello and authentication.

See docs/peer-protocol.md. A link is added by the operator (`fedimint-peer-add`), which sends a
`hello`; the peer's answer proves its peer key is bound to its node id. Every later message in
either direction is signed, fresh and carries a nonce never seen before. Announcements and forward
targets live in routes.py, ledger checks in ledger.py, forwards and settlements in
forwards.py and settlement.py; this module knows who the peers are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

from fedimint_gw.errors import GatewayError, InvalidInput, NotFound, NotReady
from fedimint_gw.lightning import bolt11
from fedimint_gw.peer import announce, wire
from fedimint_gw.peer.client import Link, PeerClient
from fedimint_gw.peer.errors import PeerAuthFailed, PeerReplayed, UnknownPeer
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.peering.hello import LIVE, MAX_CREDIT_MSAT, Hellos
from fedimint_gw.services.peering.hello import json_object as _json_object
from fedimint_gw.services.peering.ledger import PeerLedger
from fedimint_gw.services.peering.routes import PeerRoutes, PeerTarget
from fedimint_gw.store import peers as repo

REFRESH_INTERVAL = 60.0
DEFAULT_CREDIT_LIMIT = 10_000_000  # msat granted to a peer when the operator names none
_LIVE = LIVE


class PeerService:
    """The gateway's peer links."""

    def __init__(self, ctx: ServiceContext, session: aiohttp.ClientSession) -> None:
        self._ctx = ctx
        self._session = session
        self._key: wire.PeerKey | None = None
        self._client: PeerClient | None = None
        self._node_id = ""
        self._binding = ""
        self._refresher: asyncio.Task[None] | None = None
        self._routes = PeerRoutes(ctx)
        self._ledger = PeerLedger(ctx, self)
        self._hellos = Hellos(ctx, self, self._routes)

    # ----- lifecycle -------------------------------------------------------------------
    async def start(self, refresh: bool = True) -> None:
        """Derive the peer key, bind it to the node, and start refreshing links."""
        self._node_id = (await self._ctx.node.info()).node_id
        self._key = wire.PeerKey(await self._ctx.node.make_secret(wire.PEER_KEY_LABEL))
        self._binding = await self._ctx.node.sign_message(
            wire.binding_text(self._key.public_hex, self._node_id)
        )
        self._client = PeerClient(
            self._session, self._key, self._node_id, self._ctx.clock.now, self._ctx.config.request_timeout
        )
        if refresh:
            self._refresher = asyncio.create_task(self._refresh_forever())

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None

    @property
    def key(self) -> wire.PeerKey:
        if self._key is None:
            raise NotReady("the peer service is still starting")
        return self._key

    @property
    def client(self) -> PeerClient:
        if self._client is None:
            raise NotReady("the peer service is still starting")
        return self._client

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def binding(self) -> str:
        """Our node's signature vouching for our peer key."""
        return self._binding

    async def link(self, node_id: str) -> Link:
        """How to reach an active peer."""
        rec = await repo.get(self._ctx.db.conn, node_id)
        if rec is None or rec.state is not repo.PeerState.ACTIVE or not rec.url:
            raise NotFound(f"no active peer {node_id}")
        return Link(rec.url, rec.node_id, rec.peer_key)

    # ----- operator commands -----------------------------------------------------------
    async def add(self, node_id: object, url: object, credit_limit_msat: object) -> dict[str, Any]:
        """Add (or update) a peer and say hello; the answer tells whether the link is active."""
        if not wire.is_node_id(node_id) or not isinstance(node_id, str):
            raise InvalidInput("node_id must be a 33-byte node id in lowercase hex")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInput("url must be the peer gateway's public API URL (http:// or https://)")
        limit = _limit(credit_limit_msat)
        if node_id == self._node_id:
            raise InvalidInput("a gateway cannot peer with itself")
        async with self._ctx.db.transaction() as conn:
            await repo.add_or_update(conn, node_id, url, limit, self._ctx.clock.now())
        rec = await self.hello(node_id)
        return await self.describe(rec)

    async def remove(self, node_id: object) -> dict[str, Any]:
        """Stop forwarding to and accepting from a peer. Its ledger is kept (and still owed)."""
        rec = await repo.get(self._ctx.db.conn, str(node_id))
        if rec is None or rec.state not in _LIVE:
            raise NotFound(f"no peer {node_id}")
        busy = {
            **await repo.forwards_in_flight(self._ctx.db.conn, rec.node_id, "in"),
            **await repo.forwards_in_flight(self._ctx.db.conn, rec.node_id, "out"),
        }
        busy.update(await repo.exchanges_in_flight(self._ctx.db.conn, rec.node_id))
        if busy:
            raise InvalidInput(
                f"{len(busy)} forwards or exchanges with this peer are in flight; remove it once they end"
            )
        async with self._ctx.db.transaction() as conn:  # the state only: nothing else is undone
            await repo.set_state(conn, rec.node_id, repo.PeerState.REMOVED, self._ctx.clock.now(), _LIVE)
        rec = await repo.get(self._ctx.db.conn, rec.node_id) or rec
        return await self.describe(rec)

    async def list_peers(self) -> dict[str, Any]:
        """Every peer that is added and not removed, with its credit, balance and status, and the
        nodes that recently introduced themselves (a bounded list, kept in memory only)."""
        recs = [r for r in await repo.all_peers(self._ctx.db.conn) if r.state in _LIVE]
        return {
            "peers": [await self.describe(r) for r in recs],
            "introductions": self._hellos.introductions.recent(self._ctx.clock.now()),
        }

    async def describe(self, rec: repo.PeerRecord) -> dict[str, Any]:
        conn = self._ctx.db.conn
        bal = await repo.balance(conn, rec.node_id)
        out = sum((await repo.forwards_in_flight(conn, rec.node_id, "out")).values())
        inn = sum((await repo.forwards_in_flight(conn, rec.node_id, "in")).values())
        status = rec.state.value
        if rec.state in _LIVE and rec.last_error_at is not None and rec.last_error_at >= (rec.last_seen or 0):
            status = "unreachable"
        body: dict[str, Any] = {
            "node_id": rec.node_id,
            "url": rec.url,
            "status": status,
            "protocol_version": rec.version,
            "balance_msat": bal,
            "credit_limit_msat": rec.credit_limit_msat,
            "credit_used_msat": max(0, bal) + inn,
            "peer_credit_limit_msat": rec.peer_credit_limit_msat,
            "peer_credit_used_msat": max(0, -bal) + out,
            "last_seen": rec.last_seen,
            "ledger_status": rec.ledger_status,
            "federations": announce.stored(rec.announce).to_json()["federations"],
            "routes": [r.node_id for r in announce.stored(rec.announce).routes],
        }
        if rec.ledger_detail:
            body["ledger_detail"] = rec.ledger_detail
        if rec.last_error and status == "unreachable":
            body["last_error"] = rec.last_error
        return body

    async def summary(self) -> list[dict[str, Any]]:
        """Peers for `fedimint-info`: node, status and balance."""
        return [
            {k: p[k] for k in ("node_id", "status", "balance_msat", "ledger_status")}
            for p in (await self.list_peers())["peers"]
        ]

    # ----- hello (hello.py) ------------------------------------------------------------
    async def hello(self, node_id: str) -> repo.PeerRecord:
        """Say hello to a peer we added; record its key, limit and announcement (or the failure)."""
        return await self._hellos.hello(node_id)

    async def on_hello(self, headers: Mapping[str, str], path: str, raw: bytes) -> dict[str, Any]:
        """Answer a peer's hello (a stranger's leaves no stored trace)."""
        return await self._hellos.on_hello(headers, path, raw)

    # ----- authentication of every other message ----------------------------------------
    async def authenticate(self, headers: Mapping[str, str], path: str, raw: bytes) -> repo.PeerRecord:
        """The active peer that signed this request, or an error (signature before nonce)."""
        auth = wire.parse_auth(headers)
        rec = await repo.get(self._ctx.db.conn, auth.node_id)
        if rec is None or rec.peer_key is None:
            raise UnknownPeer(f"node {auth.node_id[:16]} is not a peer of this gateway")
        if not wire.verify(rec.peer_key, auth.text(path, self._node_id, raw), auth.signature):
            raise PeerAuthFailed("the request's signature does not verify", "bad_signature")
        await self.fresh(auth)
        if rec.state is not repo.PeerState.ACTIVE:
            raise UnknownPeer(f"node {auth.node_id[:16]} is not an active peer of this gateway")
        return rec

    async def fresh(self, auth: wire.RequestAuth) -> None:
        """Refuse a request whose time is off or whose nonce was seen; remember the nonce."""
        now = self._ctx.clock.now()
        wire.check_fresh(auth, now)
        async with self._ctx.db.transaction() as conn:
            fresh = await repo.remember_nonce(conn, auth.node_id, auth.nonce, now, wire.NONCE_TTL)
        if not fresh:
            raise PeerReplayed(f"nonce {auth.nonce} from {auth.node_id[:16]} was used before (a replay)")

    # ----- announcements, targets and ledger checks (routes.py, ledger.py) ----
    async def find_target(
        self, inv: bolt11.Invoice, exclude: str = "", direct_only: bool = False
    ) -> PeerTarget | None:
        """The peer an invoice ends at (directly, or through a router peer), None if none."""
        return await self._routes.find_target(inv, exclude, direct_only)

    async def statement(self, node_id: str) -> dict[str, Any]:
        """Our signed statement of the link's ledger."""
        return await self._ledger.statement(node_id)

    async def keep_statement(self, node_id: str, stmt: object) -> None:
        """Persist the peer's signed statement if it verifies."""
        await self._ledger.keep_statement(node_id, stmt)

    async def check_ledger(self, node_id: str) -> dict[str, Any]:
        """Compare ledgers with a peer (a mismatch is logged and kept on its record)."""
        return await self._ledger.check(node_id)

    async def on_ledger(self, peer: repo.PeerRecord, body: dict[str, Any]) -> dict[str, Any]:
        """Answer a peer's `ledger` message."""
        return await self._ledger.on_ledger(peer, body)

    # ----- internals -------------------------------------------------------------------
    async def refresh(self) -> None:
        """Hello to every live peer, then compare ledgers with the active ones. One peer's
        failure, whatever it is, is logged and does not stop the others."""
        for rec in await repo.all_peers(self._ctx.db.conn):
            if rec.state not in _LIVE or not rec.url:
                continue
            try:
                rec = await self.hello(rec.node_id)
                if rec.state is repo.PeerState.ACTIVE and rec.last_error is None:
                    await self.check_ledger(rec.node_id)
            except GatewayError as exc:
                self._ctx.log(f"peer {rec.node_id[:16]}: refresh failed: {exc.message}", "info")
            except Exception as exc:  # a peer's data must never stop the refresh of the others
                self._ctx.log(f"peer {rec.node_id[:16]}: refresh failed unexpectedly: {exc!r}", "warn")

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            try:
                await self.refresh()
            except Exception as exc:  # the loop outlives any failure; the next round tries again
                self._ctx.log(f"peer refresh failed unexpectedly: {exc!r}", "warn")


def _limit(raw: object) -> int:
    if raw is None or raw == "":
        return DEFAULT_CREDIT_LIMIT
    if isinstance(raw, bool):
        raise InvalidInput("credit_limit_msat must be an integer")
    try:
        value = int(str(raw))
    except ValueError:
        raise InvalidInput(f"credit_limit_msat must be an integer, got {raw!r}") from None
    if not 0 <= value <= MAX_CREDIT_MSAT:
        raise InvalidInput(f"credit_limit_msat must be from 0 to {MAX_CREDIT_MSAT}")
    return value


def json_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body as a JSON object (InvalidInput otherwise)."""
    return _json_object(raw)
