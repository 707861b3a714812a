"""Federation client used by the wallet (and usable by gateway adapters' tests).

It talks v1 (REST) or v2 (WebSocket JSON-RPC) to each guardian, negotiates the version with
the version-neutral ``GET /version``, and combines guardian shares only after verifying them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import aiohttp

from contrib.devfed.codec import object_id
from contrib.devfed.config import PublicConfig
from contrib.devfed.errors import DevfedError, ErrorCode
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.point import Point
from fedimint_gw.crypto.shamir import PointShare, combine_points
from fedimint_gw.crypto.threshold_bdhke import BlindSignatureShare, verify_share
from fedimint_gw.crypto.threshold_elgamal import Ciphertext, DecryptionShare
from fedimint_gw.crypto.threshold_elgamal import verify_share as verify_decryption_share

Json = dict[str, object]
CLIENT_MAJORS = (1, 2)
_TIMEOUT = aiohttp.ClientTimeout(total=15)


def _offline(url: str, exc: BaseException) -> DevfedError:
    return DevfedError(ErrorCode.GUARDIAN_OFFLINE, f"{url}: {exc.__class__.__name__}: {exc}")


def _remote_error(body: object, status: int) -> DevfedError:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = cast(Json, body["error"])
        name = err.get("name") or cast(Json, err.get("data") or {}).get("name")
        return DevfedError(ErrorCode.from_name(str(name)), str(err.get("message")))
    return DevfedError(ErrorCode.INTERNAL, f"unexpected answer (HTTP {status}): {body!r}")


async def http_json(
    session: aiohttp.ClientSession, method: str, url: str, body: object | None = None
) -> object:
    """One HTTP JSON request; remote errors become :class:`DevfedError` with the remote code."""
    try:
        async with session.request(method, url, json=body, timeout=_TIMEOUT) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                raise _remote_error(data, resp.status)
            return cast(object, data)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise _offline(url, exc) from None


class GuardianClient:
    """One guardian, spoken to in one API major."""

    def __init__(self, session: aiohttp.ClientSession, url: str, peer_id: int, major: int) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.peer_id = peer_id
        self.major = major
        self._ids = itertools.count(1)

    async def _v1(self, method: str, path: str, body: object | None = None) -> Json:
        return cast(Json, await http_json(self.session, method, f"{self.url}/v1{path}", body))

    async def rpc(self, method: str, params: Mapping[str, object] | None = None) -> object:
        """One v2 JSON-RPC call (a WebSocket per call keeps the client simple and stateless)."""
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": dict(params or {})}
        try:
            async with self.session.ws_connect(
                f"{self.url}/v2/ws", timeout=aiohttp.ClientWSTimeout(ws_close=5)
            ) as ws:
                await ws.send_json(request)
                answer = await asyncio.wait_for(ws.receive_json(), _TIMEOUT.total)
        except aiohttp.WSServerHandshakeError as exc:
            raise DevfedError(
                ErrorCode.GUARDIAN_OFFLINE, f"{self.url}: handshake refused ({exc.status})"
            ) from None
        except (aiohttp.ClientError, TimeoutError, ValueError, TypeError) as exc:
            raise _offline(self.url, exc) from None
        if not isinstance(answer, dict):
            raise DevfedError(ErrorCode.INTERNAL, f"bad JSON-RPC answer {answer!r}")
        if "error" in answer:
            raise _remote_error(answer, 200)
        return cast(object, answer.get("result"))

    async def submit(self, tx: Mapping[str, object]) -> Json:
        """Submit a transaction; returns ``{"txid", ...}``."""
        if self.major == 1:
            return await self._v1("POST", "/transactions", dict(tx))
        return cast(Json, await self.rpc("submit_transaction", {"transaction": dict(tx)}))

    async def faucet(self, outputs: Sequence[Mapping[str, object]]) -> Json:
        """Ask the faucet to sign note outputs."""
        body = {"outputs": [dict(o) for o in outputs]}
        if self.major == 1:
            return await self._v1("POST", "/faucet", body)
        return cast(Json, await self.rpc("faucet", body))

    async def signature_shares(self, txid: str) -> dict[int, BlindSignatureShare]:
        """This guardian's shares ``{out_idx: share}`` (parsed, not yet verified)."""
        try:
            if self.major == 1:
                data = await self._v1("GET", f"/transactions/{txid}/signature_shares")
                items = cast(list[Json], data["shares"])
                return {int(str(s["out_idx"])): BlindSignatureShare.from_dict(s) for s in items}
            result = cast(Json, await self.rpc("signature_shares", {"txid": txid}))
            shares = cast(Json, result["shares"])
            return {int(k): BlindSignatureShare.from_dict(v) for k, v in shares.items()}
        except (KeyError, TypeError, CryptoError) as exc:
            raise DevfedError(
                ErrorCode.INTERNAL, f"guardian {self.peer_id} sent malformed shares: {exc}"
            ) from None

    async def contract(self, contract_id: str) -> Json:
        """The contract view."""
        if self.major == 1:
            return await self._v1("GET", f"/contracts/{contract_id}")
        return cast(Json, await self.rpc("contract", {"contract_id": contract_id}))

    async def decryption_share(self, contract_id: str) -> DecryptionShare:
        """v2 only: this guardian's decryption share for a funded incoming contract."""
        result = cast(Json, await self.rpc("decryption_share", {"contract_id": contract_id}))
        try:
            return DecryptionShare.from_dict(result["share"])
        except (KeyError, CryptoError) as exc:
            raise DevfedError(ErrorCode.INTERNAL, f"malformed decryption share: {exc}") from None

    async def block_height(self) -> int:
        """Current block height."""
        if self.major == 1:
            return int(str((await self._v1("GET", "/block_height"))["height"]))
        return int(str(await self.rpc("block_height")))


@dataclass(frozen=True)
class Combined:
    """Result of collecting shares: the combined points and the guardians whose shares failed."""

    points: Mapping[int, Point]
    rejected_peers: tuple[int, ...]


async def fetch_config(
    session: aiohttp.ClientSession, urls: Sequence[str], federation_id: str
) -> PublicConfig:
    """Fetch the config from the first guardian that answers and check its hash."""
    last: DevfedError | None = None
    for url in urls:
        try:
            raw = await http_json(session, "GET", f"{url.rstrip('/')}/v1/config")
        except DevfedError as exc:
            last = exc
            if exc.code is not ErrorCode.GUARDIAN_OFFLINE and exc.code is not ErrorCode.INTERNAL:
                raise
            try:
                ws_client = GuardianClient(session, url, 0, 2)
                raw = cast(Json, await ws_client.rpc("config"))["config"]
            except DevfedError as exc2:
                last = exc2
                continue
        if object_id(raw) != federation_id:
            raise DevfedError(
                ErrorCode.INVALID_REQUEST, f"config from {url} does not hash to the invite's id"
            )
        return PublicConfig.from_dict(raw)
    raise last or DevfedError(ErrorCode.GUARDIAN_OFFLINE, "no guardian reachable")


async def negotiate_major(session: aiohttp.ClientSession, config: PublicConfig) -> int:
    """The highest major we support that at least ``threshold`` guardians serve."""

    async def ask(url: str) -> set[int]:
        try:
            data = cast(Json, await http_json(session, "GET", f"{url}/version"))
            return {int(str(cast(Json, m)["major"])) for m in cast(list[object], data["majors"])}
        except (DevfedError, KeyError, TypeError, ValueError):
            return set()

    served = await asyncio.gather(*(ask(g.url) for g in config.guardians))
    for major in sorted(CLIENT_MAJORS, reverse=True):
        if sum(major in s for s in served) >= config.threshold:
            return major
    raise DevfedError(ErrorCode.NO_CONSENSUS, "no API major is served by a threshold of guardians")


class FederationClient:
    """Speaks to all guardians of one federation in one major."""

    def __init__(self, session: aiohttp.ClientSession, config: PublicConfig, major: int) -> None:
        self.session = session
        self.config = config
        self.major = major
        self.guardians = [GuardianClient(session, g.url, g.peer_id, major) for g in config.guardians]

    async def _first(self, call: str, *args: object) -> Json:
        last: DevfedError | None = None
        for g in self.guardians:
            try:
                return cast(Json, await getattr(g, call)(*args))
            except DevfedError as exc:
                if exc.code is not ErrorCode.GUARDIAN_OFFLINE:
                    raise
                last = exc
        raise last or DevfedError(ErrorCode.GUARDIAN_OFFLINE, "no guardian reachable")

    async def submit(self, tx: Mapping[str, object]) -> Json:
        """Submit to the first reachable guardian (they share one sequencer)."""
        return await self._first("submit", tx)

    async def faucet(self, outputs: Sequence[Mapping[str, object]]) -> Json:
        """Faucet via the first reachable guardian."""
        return await self._first("faucet", outputs)

    async def contract(self, contract_id: str) -> Json:
        """A contract view from the first reachable guardian."""
        return await self._first("contract", contract_id)

    async def block_height(self) -> int:
        """Block height from the first reachable guardian."""
        for g in self.guardians:
            try:
                return await g.block_height()
            except DevfedError as exc:
                if exc.code is not ErrorCode.GUARDIAN_OFFLINE:
                    raise
        raise DevfedError(ErrorCode.GUARDIAN_OFFLINE, "no guardian reachable")

    async def combine_signatures(self, txid: str, blinded: Mapping[int, tuple[int, Point]]) -> Combined:
        """Fetch every guardian's shares for ``{out_idx: (denomination, B_)}``, verify, combine ``t``."""

        async def fetch(g: GuardianClient) -> dict[int, BlindSignatureShare] | DevfedError:
            try:
                return await g.signature_shares(txid)
            except DevfedError as exc:
                return exc

        answers = await asyncio.gather(*(fetch(g) for g in self.guardians))
        good: list[dict[int, BlindSignatureShare]] = []
        rejected: list[int] = []
        for g, answer in zip(self.guardians, answers, strict=True):
            if isinstance(answer, DevfedError):
                continue
            index = g.peer_id + 1
            ok = all(
                j in answer
                and answer[j].index == index
                and verify_share(self.config.guardians[g.peer_id].mint_pubkey_shares[denom], b, answer[j])
                for j, (denom, b) in blinded.items()
            )
            (good.append(answer) if ok else rejected.append(g.peer_id))
        if len(good) < self.config.threshold:
            raise DevfedError(
                ErrorCode.NO_CONSENSUS,
                f"only {len(good)} valid signature share sets (rejected guardians {rejected}), "
                f"need {self.config.threshold}",
            )
        chosen = good[: self.config.threshold]
        points = {
            j: combine_points([PointShare(s[j].index, s[j].signature) for s in chosen]) for j in blinded
        }
        return Combined(points, tuple(rejected))

    async def decryption_shares(
        self, contract_id: str, ciphertext: Ciphertext
    ) -> tuple[list[DecryptionShare], tuple[int, ...]]:
        """v2 gateway side: verified decryption shares of every reachable guardian, and rejects."""

        async def fetch(g: GuardianClient) -> DecryptionShare | DevfedError:
            try:
                return await g.decryption_share(contract_id)
            except DevfedError as exc:
                return exc

        answers = await asyncio.gather(*(fetch(g) for g in self.guardians))
        keys = self.config.ln_shares()
        good: list[DecryptionShare] = []
        rejected: list[int] = []
        for g, answer in zip(self.guardians, answers, strict=True):
            if isinstance(answer, DevfedError):
                if answer.code not in (ErrorCode.GUARDIAN_OFFLINE,):
                    raise answer
                continue
            if answer.index == g.peer_id + 1 and verify_decryption_share(
                keys[answer.index], ciphertext, answer
            ):
                good.append(answer)
            else:
                rejected.append(g.peer_id)
        return good, tuple(rejected)
