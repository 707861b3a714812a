"""`hello` in both directions (docs/peer-protocol.md §4): opening and refreshing peer links.

Our hello to a peer we added records its verified key, version, limit and announcement; a
peer's hello to us does the same on a link our operator added. Both store only the fields a
hello sets, and only on a link that is still live (pending or active), in one conditional
write after the network call or key check: a `fedimint-peer-remove` or a credit change made
meanwhile is never undone. Everything the peer sends is parsed before anything is stored.

A stranger (a node our operator has not added) leaves no row: its hello is checked and
answered `known: false`, and it is remembered only in a small, expiring, in-memory list of
introductions shown by `fedimint-peer-list`.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Mapping
from typing import Any, Protocol

from fedimint_gw.errors import GatewayError, InvalidInput, NotFound, PeerError
from fedimint_gw.peer import announce, wire
from fedimint_gw.peer.client import Link, PeerClient
from fedimint_gw.peer.errors import PeerAuthFailed, UnsupportedVersion
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.peering.routes import PeerRoutes
from fedimint_gw.store import peers as repo

LIVE = (repo.PeerState.PENDING, repo.PeerState.ACTIVE)
MAX_INTRODUCTIONS = 100  # strangers remembered (in memory only), oldest forgotten first
INTRODUCTION_TTL = 24 * 3600
MAX_CREDIT_MSAT = 21_000_000 * 100_000_000 * 1000  # every bitcoin there will be


class Me(Protocol):
    """Who we are on the links (PeerService)."""

    @property
    def key(self) -> wire.PeerKey: ...

    @property
    def node_id(self) -> str: ...

    @property
    def binding(self) -> str: ...

    @property
    def client(self) -> PeerClient: ...

    async def fresh(self, auth: wire.RequestAuth) -> None: ...


class Introductions:
    """Strangers that said hello: bounded in number and age, never stored."""

    def __init__(self) -> None:
        self._seen: collections.OrderedDict[str, int] = collections.OrderedDict()

    def note(self, node_id: str, now: int) -> bool:
        """Remember a stranger's hello; True if it is new (worth a log line)."""
        new = node_id not in self._seen
        self._seen.pop(node_id, None)
        self._seen[node_id] = now
        while len(self._seen) > MAX_INTRODUCTIONS:
            self._seen.popitem(last=False)
        return new

    def recent(self, now: int) -> list[dict[str, Any]]:
        """The introductions of the last day, newest last."""
        for node_id in [n for n, at in self._seen.items() if at < now - INTRODUCTION_TTL]:
            del self._seen[node_id]
        return [{"node_id": n, "at": at} for n, at in self._seen.items()]


class Hellos:
    """Says hello to peers and answers theirs."""

    def __init__(self, ctx: ServiceContext, me: Me, routes: PeerRoutes) -> None:
        self._ctx = ctx
        self._me = me
        self._routes = routes
        self.introductions = Introductions()

    async def hello(self, node_id: str) -> repo.PeerRecord:
        """Say hello to a peer we added; record its key, limit and announcement (or the failure)."""
        rec = await repo.get(self._ctx.db.conn, node_id)
        if rec is None or rec.state not in LIVE or not rec.url:
            raise NotFound(f"no peer {node_id} to greet")
        body = {
            "node_id": self._me.node_id,
            "peer_key": self._me.key.public_hex,
            "binding": self._me.binding,
            "versions": {"min": wire.VERSION_MIN, "max": wire.VERSION_MAX},
            "api_url": self._ctx.config.api_url,
            "credit_limit_msat": rec.credit_limit_msat,
            "announce": await self._routes.announcement(node_id),
        }
        try:
            answer = await self._me.client.call(Link(rec.url, node_id, None), "hello", body)
            key = await self._verified_key(answer, node_id)
            version = answer.get("version")
            if not isinstance(version, int) or not wire.VERSION_MIN <= version <= wire.VERSION_MAX:
                raise UnsupportedVersion(f"the peer chose protocol version {version!r}")
            facts = repo.HelloFacts(
                key, version, _credit(answer.get("credit_limit_msat")), _announce(answer.get("announce"))
            )
        except GatewayError as exc:
            now = self._ctx.clock.now()
            self._ctx.log(f"peer {node_id[:16]}: hello failed: {exc.message}", "info")
            async with self._ctx.db.transaction() as conn:
                await repo.record_error(conn, node_id, exc.message, now)
            return await self._reread(node_id)
        state = repo.PeerState.ACTIVE if answer.get("known") is True else repo.PeerState.PENDING
        async with self._ctx.db.transaction() as conn:
            await repo.record_hello(conn, node_id, facts, state, self._ctx.clock.now())
        return await self._reread(node_id)

    async def on_hello(self, headers: Mapping[str, str], path: str, raw: bytes) -> dict[str, Any]:
        """Answer a peer's hello: check its signature with the key it carries and that key's binding."""
        auth = wire.parse_auth(headers)
        body = json_object(raw)
        key = body.get("peer_key")
        if body.get("node_id") != auth.node_id or not wire.is_node_id(key) or not isinstance(key, str):
            raise PeerAuthFailed("hello must carry the sender's node id and a peer key")
        if not wire.verify(key, auth.text(path, self._me.node_id, raw), auth.signature):
            raise PeerAuthFailed("the hello's signature does not verify", "bad_signature")
        now = self._ctx.clock.now()
        wire.check_fresh(auth, now)
        rec = await repo.get(self._ctx.db.conn, auth.node_id)
        live = rec is not None and rec.state in LIVE
        if live:  # a stranger's hello changes nothing, so its nonce need not be kept
            await self._me.fresh(auth)
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
                f"theirs {str(body.get('versions'))[:100]}"
            )
        known = False
        if live:
            facts = repo.HelloFacts(
                key, version, _credit(body.get("credit_limit_msat")), _announce(body.get("announce"))
            )
            async with self._ctx.db.transaction() as conn:
                known = await repo.record_hello(conn, auth.node_id, facts, repo.PeerState.ACTIVE, now)
        if not known and self.introductions.note(auth.node_id, now):
            self._ctx.log(f"peer {auth.node_id[:16]} introduced itself; add it to accept forwards", "info")
        rec = await repo.get(self._ctx.db.conn, auth.node_id) if known else None
        return {
            "version": version,
            "node_id": self._me.node_id,
            "peer_key": self._me.key.public_hex,
            "binding": self._me.binding,
            "known": known,
            "credit_limit_msat": rec.credit_limit_msat if rec is not None else 0,
            "announce": await self._routes.announcement(auth.node_id) if known else {},
        }

    async def _verified_key(self, answer: dict[str, Any], node_id: str) -> str:
        key, binding = answer.get("peer_key"), answer.get("binding")
        if answer.get("node_id") != node_id or not wire.is_node_id(key) or not isinstance(key, str):
            raise PeerError("the peer's hello answer does not name its node and key")
        if not isinstance(binding, str) or not await self._ctx.node.check_message(
            wire.binding_text(key, node_id), binding, node_id
        ):
            raise PeerAuthFailed("the peer's key is not bound to its node id", "bad_signature")
        return key

    async def _reread(self, node_id: str) -> repo.PeerRecord:
        rec = await repo.get(self._ctx.db.conn, node_id)
        if rec is None:
            raise NotFound(f"no peer {node_id}")
        return rec


def _credit(raw: object) -> int:
    """A credit limit a peer grants us: an integer msat amount (absent: none)."""
    if raw is None:
        return 0
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= MAX_CREDIT_MSAT:
        raise InvalidInput("credit_limit_msat must be a non-negative integer amount of msat")
    return raw


def _announce(raw: object) -> dict[str, Any]:
    return announce.parse(raw).to_json()


def json_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body as a JSON object (InvalidInput otherwise, also when nested too deep)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body
