"""Peer gateways: links, hello and authentication.

See docs/peer-protocol.md. A link is added by the operator (`fedimint-peer-add`), which sends a
`hello`; the peer's answer proves its peer key is bound to its node id. Every later message in
either direction is signed, fresh and carries a nonce never seen before. Announcements and forward
targets live in routes.py, ledger checks in ledger.py, forwards and settlements in
forwards.py and settlement.py; this module knows who the peers are.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from fedimint_gw.errors import GatewayError, InvalidInput, NotFound, NotReady, PeerError
from fedimint_gw.lightning import bolt11
from fedimint_gw.peer import wire
from fedimint_gw.peer.client import Link, PeerClient
from fedimint_gw.peer.errors import PeerAuthFailed, PeerReplayed, UnknownPeer, UnsupportedVersion
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.peering.ledger import PeerLedger
from fedimint_gw.services.peering.routes import PeerRoutes, PeerTarget
from fedimint_gw.store import peers as repo

REFRESH_INTERVAL = 60.0
DEFAULT_CREDIT_LIMIT = 10_000_000  # msat granted to a peer when the operator names none
_LIVE = (repo.PeerState.PENDING, repo.PeerState.ACTIVE)


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
        now = self._ctx.clock.now()
        rec = await repo.get(self._ctx.db.conn, node_id)
        if rec is None:
            rec = repo.PeerRecord(node_id, url, repo.PeerState.PENDING, limit, now, now)
        else:
            state = repo.PeerState.PENDING if rec.state is not repo.PeerState.ACTIVE else rec.state
            rec = rec.with_changes(now, url=url, credit_limit_msat=limit, state=state)
        await self._save(rec)
        rec = await self.hello(node_id)
        return await self.describe(rec)

    async def remove(self, node_id: object) -> dict[str, Any]:
        """Stop forwarding to and accepting from a peer. Its ledger is kept (and still owed)."""
        rec = await repo.get(self._ctx.db.conn, str(node_id))
        if rec is None or rec.state is repo.PeerState.REMOVED:
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
        rec = rec.with_changes(self._ctx.clock.now(), state=repo.PeerState.REMOVED)
        await self._save(rec)
        return await self.describe(rec)

    async def list_peers(self) -> dict[str, Any]:
        """Every peer that is not removed, with its credit, balance and status."""
        recs = [r for r in await repo.all_peers(self._ctx.db.conn) if r.state is not repo.PeerState.REMOVED]
        return {"peers": [await self.describe(r) for r in recs]}

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
            "federations": rec.announce.get("federations", []),
            "routes": [r.get("node_id") for r in rec.announce.get("routes", [])],
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

    # ----- hello -----------------------------------------------------------------------
    async def hello(self, node_id: str) -> repo.PeerRecord:
        """Say hello to a peer we added; record its key, limit and announcement (or the failure)."""
        rec = await repo.get(self._ctx.db.conn, node_id)
        if rec is None or rec.state not in _LIVE or not rec.url:
            raise NotFound(f"no peer {node_id} to greet")
        body = {
            "node_id": self._node_id,
            "peer_key": self.key.public_hex,
            "binding": self._binding,
            "versions": {"min": wire.VERSION_MIN, "max": wire.VERSION_MAX},
            "api_url": self._ctx.config.api_url,
            "credit_limit_msat": rec.credit_limit_msat,
            "announce": await self._routes.announcement(node_id),
        }
        try:
            answer = await self.client.call(Link(rec.url, node_id, None), "hello", body)
            key = await self._verified_key(answer, node_id)
            version = answer.get("version")
            if not isinstance(version, int) or not wire.VERSION_MIN <= version <= wire.VERSION_MAX:
                raise UnsupportedVersion(f"the peer chose protocol version {version!r}")
        except GatewayError as exc:
            now = self._ctx.clock.now()
            self._ctx.log(f"peer {node_id[:16]}: hello failed: {exc.message}", "info")
            rec = rec.with_changes(now, last_error=exc.message, last_error_at=now)
            await self._save(rec)
            return rec
        now = self._ctx.clock.now()
        rec = rec.with_changes(
            now,
            state=repo.PeerState.ACTIVE if answer.get("known") is True else repo.PeerState.PENDING,
            peer_key=key,
            version=version,
            peer_credit_limit_msat=_int(answer.get("credit_limit_msat")),
            announce=_announce(answer.get("announce")),
            last_seen=now,
            last_error=None,
            last_error_at=None,
        )
        await self._save(rec)
        return rec

    async def on_hello(self, headers: Mapping[str, str], path: str, raw: bytes) -> dict[str, Any]:
        """Answer a peer's hello: check its signature with the key it carries and that key's binding."""
        auth = wire.parse_auth(headers)
        body = _json_object(raw)
        key = body.get("peer_key")
        if body.get("node_id") != auth.node_id or not wire.is_node_id(key) or not isinstance(key, str):
            raise PeerAuthFailed("hello must carry the sender's node id and a peer key")
        if not wire.verify(key, auth.text(path, self._node_id, raw), auth.signature):
            raise PeerAuthFailed("the hello's signature does not verify", "bad_signature")
        await self._fresh(auth)
        binding = body.get("binding")
        text = wire.binding_text(key, auth.node_id)
        if not isinstance(binding, str) or not await self._ctx.node.check_message(
            text, binding, auth.node_id
        ):
            raise PeerAuthFailed("the peer key is not bound to the node id (bad binding)", "bad_signature")
        version = wire.negotiate(body.get("versions"))
        if not version:
            raise UnsupportedVersion(
                f"no common protocol version: ours {wire.VERSION_MIN}..{wire.VERSION_MAX}, "
                f"theirs {body.get('versions')!r}"
            )
        now = self._ctx.clock.now()
        rec = await repo.get(self._ctx.db.conn, auth.node_id)
        url = body.get("api_url") if isinstance(body.get("api_url"), str) else None
        if rec is None:
            rec = repo.PeerRecord(auth.node_id, url, repo.PeerState.INTRODUCED, 0, now, now)
            self._ctx.log(f"peer {auth.node_id[:16]} introduced itself; add it to accept forwards", "info")
        known = rec.state in _LIVE
        rec = rec.with_changes(
            now,
            peer_key=key,
            version=version,
            peer_credit_limit_msat=_int(body.get("credit_limit_msat")),
            announce=_announce(body.get("announce")),
            last_seen=now,
            state=repo.PeerState.ACTIVE if known else rec.state,
        )
        await self._save(rec)
        return {
            "version": version,
            "node_id": self._node_id,
            "peer_key": self.key.public_hex,
            "binding": self._binding,
            "known": known,
            "credit_limit_msat": rec.credit_limit_msat if known else 0,
            "announce": await self._routes.announcement(auth.node_id) if known else {},
        }

    async def _verified_key(self, answer: dict[str, Any], node_id: str) -> str:
        key, binding = answer.get("peer_key"), answer.get("binding")
        if answer.get("node_id") != node_id or not isinstance(key, str) or not isinstance(binding, str):
            raise PeerError("the peer's hello answer does not name its node and key")
        if not await self._ctx.node.check_message(wire.binding_text(key, node_id), binding, node_id):
            raise PeerAuthFailed("the peer's key is not bound to its node id", "bad_signature")
        return key

    # ----- authentication of every other message ----------------------------------------
    async def authenticate(self, headers: Mapping[str, str], path: str, raw: bytes) -> repo.PeerRecord:
        """The active peer that signed this request, or an error (signature before nonce)."""
        auth = wire.parse_auth(headers)
        rec = await repo.get(self._ctx.db.conn, auth.node_id)
        if rec is None or rec.peer_key is None:
            raise UnknownPeer(f"node {auth.node_id[:16]} is not a peer of this gateway")
        if not wire.verify(rec.peer_key, auth.text(path, self._node_id, raw), auth.signature):
            raise PeerAuthFailed("the request's signature does not verify", "bad_signature")
        await self._fresh(auth)
        if rec.state is not repo.PeerState.ACTIVE:
            raise UnknownPeer(f"node {auth.node_id[:16]} is not an active peer of this gateway")
        return rec

    async def _fresh(self, auth: wire.RequestAuth) -> None:
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
    async def _save(self, rec: repo.PeerRecord) -> None:
        async with self._ctx.db.transaction() as conn:
            await repo.save(conn, rec)

    async def refresh(self) -> None:
        """Hello to every live peer, then compare ledgers with the active ones."""
        for rec in await repo.all_peers(self._ctx.db.conn):
            if rec.state not in _LIVE or not rec.url:
                continue
            rec = await self.hello(rec.node_id)
            if rec.state is repo.PeerState.ACTIVE and rec.last_error is None:
                try:
                    await self.check_ledger(rec.node_id)
                except GatewayError as exc:
                    self._ctx.log(f"peer {rec.node_id[:16]}: ledger check failed: {exc.message}", "info")

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            try:
                await self.refresh()
            except GatewayError as exc:
                self._ctx.log(f"peer refresh: {exc.message}", "info")


def _limit(raw: object) -> int:
    if raw is None or raw == "":
        return DEFAULT_CREDIT_LIMIT
    if isinstance(raw, bool):
        raise InvalidInput("credit_limit_msat must be an integer")
    try:
        value = int(str(raw))
    except ValueError:
        raise InvalidInput(f"credit_limit_msat must be an integer, got {raw!r}") from None
    if value < 0:
        raise InvalidInput("credit_limit_msat must not be negative")
    return value


def _int(raw: object) -> int:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else 0


def _announce(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    feds = [f for f in raw.get("federations", []) if isinstance(f, dict)]
    routes = [r for r in raw.get("routes", []) if isinstance(r, dict) and wire.is_node_id(r.get("node_id"))]
    return {"federations": feds, "routes": routes, "expires_at": _int(raw.get("expires_at"))}


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def json_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body as a JSON object (InvalidInput otherwise)."""
    return _json_object(raw)
