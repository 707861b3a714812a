"""Private helpers of the built-in devfed adapters: wire codec, guardian calls, fan-out.

Nothing here is public API. `v1.py` (REST) and `v2.py` (WebSocket JSON-RPC) differ mostly in
how one guardian is asked something: each implements `GuardianApi` and hands it to `Ledger`,
which runs the gateway's ecash operations (crash-safe through `NoteWallet`) for both.

Rules every call here follows:
- every request to a guardian has a deadline (`timeout`), so nothing hangs;
- transport failures, timeouts and garbage answers become `RemoteError` with an
  "unreachable" name; guardian refusals keep the devfed error name (docs/federation-api.md §8);
- `to_gateway_error` is the only place devfed error names become `fedimint_gw.errors` types.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp
from coincurve import PrivateKey, PublicKey

from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.point import Point
from fedimint_gw.crypto.shamir import PointShare, verify_public_shares
from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import (
    FederationMisbehaved,
    FederationRejected,
    FederationUnreachable,
    GatewayError,
    InvalidInput,
    NotFound,
)
from fedimint_gw.federation.adapter import FederationDescription
from fedimint_gw.federation.ecash import MintKeys
from fedimint_gw.federation.registry import federation_id_of

Json = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")

# Error names after which another guardian (or a later retry) may well succeed.
UNREACHABLE = frozenset({"guardian_offline", "no_consensus", "internal", "malformed_answer"})
NOT_FOUND = frozenset({"unknown_transaction", "unknown_contract", "unknown_offer"})


# ---- codec ---------------------------------------------------------------------------------
def canonical_json(value: object) -> bytes:
    """devfed canonical JSON: sorted keys, no spaces, ASCII."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def object_id(value: object) -> str:
    """sha256 of the canonical JSON (transaction ids, contract ids)."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def txid_of(tx: Mapping[str, Any]) -> str:
    """The id of a (non-faucet) transaction: signatures are not covered."""
    return object_id({"inputs": tx["inputs"], "outputs": tx["outputs"]})


def sign(secret: bytes, purpose: str, message: object) -> str:
    """ECDSA (DER hex) over sha256("devfed/" + purpose + NUL + canonical_json(message))."""
    digest = hashlib.sha256(b"devfed/" + purpose.encode() + b"\x00" + canonical_json(message)).digest()
    return str(PrivateKey(secret).sign(digest, hasher=None).hex())


def verify_signature(pubkey_hex: str, purpose: str, message: object, signature_hex: object) -> bool:
    """Check a signature made by `sign` (malformed keys or signatures are simply invalid)."""
    if not isinstance(signature_hex, str):
        return False
    digest = hashlib.sha256(b"devfed/" + purpose.encode() + b"\x00" + canonical_json(message)).digest()
    try:
        return bool(
            PublicKey(bytes.fromhex(pubkey_hex)).verify(bytes.fromhex(signature_hex), digest, hasher=None)
        )
    except (ValueError, TypeError):
        return False


def pubkey_of(secret: bytes) -> str:
    """The compressed public key (hex) of a 32-byte secret."""
    return str(PrivateKey(secret).public_key.format().hex())


# ---- errors --------------------------------------------------------------------------------
class RemoteError(Exception):
    """A guardian's refusal (devfed error name) or its being unreachable."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message

    @property
    def unreachable(self) -> bool:
        """True when another guardian or a retry may succeed."""
        return self.name in UNREACHABLE


def to_gateway_error(exc: RemoteError, what: str) -> GatewayError:
    """Translate a guardian error into the gateway's typed errors (message names the cause)."""
    text = f"{what}: {exc.name}: {exc.message}"
    if exc.unreachable:
        return FederationUnreachable(text)
    if exc.name in NOT_FOUND:
        return NotFound(text)
    return FederationRejected(text)


def _remote(body: object, fallback: str) -> RemoteError:
    """The RemoteError of a v1 `{"error": {...}}` or v2 JSON-RPC error body."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        data = err.get("data")
        name = err.get("name") or (data.get("name") if isinstance(data, dict) else None)
        return RemoteError(str(name or "internal"), str(err.get("message", "")))
    return RemoteError("malformed_answer", fallback)


# ---- transports ----------------------------------------------------------------------------
async def http_json(
    session: aiohttp.ClientSession, method: str, url: str, body: object | None, timeout: float
) -> object:
    """One HTTP JSON request with a deadline; errors become RemoteError."""
    try:
        async with session.request(
            method, url, json=body, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            text = await resp.text()
            try:
                data: object = json.loads(text)
            except ValueError:
                raise RemoteError("malformed_answer", f"{url}: HTTP {resp.status}, not JSON") from None
            if resp.status >= 400:
                raise _remote(data, f"{url}: HTTP {resp.status}")
            return data
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, UnicodeDecodeError) as exc:
        raise RemoteError("guardian_offline", f"{url}: {type(exc).__name__}: {exc}") from None


async def ws_rpc(
    session: aiohttp.ClientSession, url: str, method: str, params: Mapping[str, object], timeout: float
) -> object:
    """One JSON-RPC 2.0 call on a short-lived WebSocket to `{url}/v2/ws`, with a deadline."""
    request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": dict(params)}

    async def call() -> object:
        async with session.ws_connect(
            f"{url.rstrip('/')}/v2/ws", timeout=aiohttp.ClientWSTimeout(ws_close=timeout)
        ) as ws:
            await ws.send_str(canonical_json(request).decode())
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise RemoteError("guardian_offline", f"{url}: websocket closed ({msg.type.name})")
            return json.loads(msg.data)

    try:
        answer = await asyncio.wait_for(call(), timeout)
    except aiohttp.WSServerHandshakeError as exc:
        raise RemoteError("guardian_offline", f"{url}: websocket refused (HTTP {exc.status})") from None
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise RemoteError("guardian_offline", f"{url}: {type(exc).__name__}: {exc}") from None
    except ValueError:
        raise RemoteError("malformed_answer", f"{url}: answer is not JSON") from None
    if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
        raise RemoteError("malformed_answer", f"{url}: not a JSON-RPC answer")
    if "error" in answer:
        raise _remote(answer, f"{url}: malformed JSON-RPC error")
    return answer["result"]


def as_obj(value: object, what: str) -> Json:
    """`value` as a JSON object, else a `malformed_answer` RemoteError."""
    if not isinstance(value, dict):
        raise RemoteError("malformed_answer", f"{what} is not a JSON object")
    return value


# ---- config --------------------------------------------------------------------------------
@dataclass(frozen=True)
class GuardianKey:
    """A guardian as the client sees it: peer id, URL, Shamir index, decryption key share."""

    peer_id: int
    url: str
    index: int
    ln_share: Point


@dataclass(frozen=True)
class FederationKeys:
    """The parts of a devfed public config the adapters use, parsed and checked once."""

    name: str
    threshold: int
    tx_fee: Msat
    guardians: tuple[GuardianKey, ...]
    mint: MintKeys
    ln_pubkey: Point

    @property
    def ln_shares(self) -> dict[int, Point]:
        """Decryption key shares by Shamir index."""
        return {g.index: g.ln_share for g in self.guardians}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FederationKeys:
        """Parse and check the config (key shares consistent); raises ValueError if not."""
        try:
            threshold = int(config["threshold"])
            guardians, shares = [], {}
            for raw in sorted(config["guardians"], key=lambda g: int(g["peer_id"])):
                peer = int(raw["peer_id"])
                guardians.append(
                    GuardianKey(
                        peer, str(raw["url"]).rstrip("/"), peer + 1, Point.from_hex(raw["ln_pubkey_share"])
                    )
                )
                shares[peer + 1] = {int(d): Point.from_hex(p) for d, p in raw["mint_pubkey_shares"].items()}
            aggregate = {int(d): Point.from_hex(p) for d, p in config["mint"]["pubkeys"].items()}
            per_denom = {d: {i: shares[i][d] for i in shares} for d in aggregate}
            ln_pubkey = Point.from_hex(config["ln"]["pubkey"])
            keys = cls(
                name=str(config["name"]),
                threshold=threshold,
                tx_fee=Msat(int(config["tx_fee_msat"])),
                guardians=tuple(guardians),
                mint=MintKeys(threshold, aggregate, per_denom),
                ln_pubkey=ln_pubkey,
            )
        except (KeyError, TypeError, AttributeError, CryptoError) as exc:
            raise ValueError(f"malformed federation config: {exc!r}") from None
        ln = [PointShare(g.index, g.ln_share) for g in keys.guardians]
        if not verify_public_shares(ln_pubkey, ln, threshold):
            raise ValueError("the config's decryption key shares do not match ln.pubkey")
        for d, key in aggregate.items():
            if not verify_public_shares(key, [PointShare(i, p) for i, p in per_denom[d].items()], threshold):
                raise ValueError(f"the config's mint key shares of denomination {d} do not match")
        return keys


def checked_keys(config: Mapping[str, Any], federation_id: str) -> FederationKeys:
    """The config parsed and checked: it hashes to the federation id, its key shares agree."""
    if federation_id_of(config) != federation_id:
        raise InvalidInput(f"the config does not hash to federation id {federation_id}")
    try:
        return FederationKeys.from_config(config)
    except ValueError as exc:
        raise FederationMisbehaved(str(exc)) from None


def describe_config(config: Mapping[str, Any]) -> FederationDescription:
    """Name, threshold and guardian URLs of a devfed config (ValueError if malformed)."""
    try:
        urls = tuple(str(g["url"]) for g in sorted(config["guardians"], key=lambda g: int(g["peer_id"])))
        return FederationDescription(str(config["name"]), int(config["threshold"]), urls)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed federation config: {exc!r}") from None


# ---- the per-version API and fan-out ---------------------------------------------------------
class GuardianApi(Protocol):
    """What one API version must provide for the shared ledger code (one guardian per call)."""

    async def submit(self, url: str, tx: Json) -> Json:
        """Submit a transaction; `{"txid", "height", ...}`."""
        ...

    async def signature_shares(self, url: str, txid: str) -> dict[int, object]:
        """This guardian's blind signature shares by output index."""
        ...

    async def contract(self, url: str, contract_id: str) -> Json:
        """The contract view."""
        ...

    async def transaction(self, url: str, txid: str) -> Json:
        """An accepted transaction's status (`unknown_transaction` if it was never accepted)."""
        ...

    async def block_height(self, url: str) -> int:
        """The block height."""
        ...


class Guardians:
    """Calls to a federation's guardians: one reachable guardian, or all of them (t of n)."""

    def __init__(self, keys: FederationKeys, timeout: float) -> None:
        self.keys = keys
        self.timeout = timeout
        self._preferred = 0

    async def timed(self, fn: Callable[[GuardianKey], Awaitable[T]], g: GuardianKey) -> T:
        """`fn(g)` within the per-guardian deadline (a stall becomes `guardian_offline`)."""
        try:
            return await asyncio.wait_for(fn(g), self.timeout)
        except asyncio.TimeoutError:
            raise RemoteError("guardian_offline", f"{g.url}: no answer in {self.timeout}s") from None

    async def first(self, fn: Callable[[GuardianKey], Awaitable[T]], what: str) -> T:
        """Ask guardians one at a time (the last good one first) until one answers.

        A refusal is final (all guardians share one state); unreachable ones are skipped. Only
        for reads that move no money (registration, vetting): money decisions go through
        `quorum.Quorum`, which needs a threshold of agreeing guardians.
        """
        n = len(self.keys.guardians)
        problems: list[str] = []
        for k in range(n):
            pos = (self._preferred + k) % n
            g = self.keys.guardians[pos]
            try:
                result = await self.timed(fn, g)
            except RemoteError as exc:
                if not exc.unreachable:
                    self._preferred = pos
                    raise to_gateway_error(exc, what) from None
                problems.append(f"guardian {g.peer_id}: {exc}")
                continue
            self._preferred = pos
            return result
        raise FederationUnreachable(f"{what}: no guardian answered ({'; '.join(problems)})")

    async def collect(
        self,
        fn: Callable[[GuardianKey], Awaitable[T]],
        enough: Callable[[Mapping[int, T]], R],
        what: str,
    ) -> R:
        """Ask every guardian at once; return `enough(answers by Shamir index)` as soon as it
        succeeds (it raises FederationUnreachable while a threshold of good answers is missing)."""
        tasks = {asyncio.ensure_future(self.timed(fn, g)): g for g in self.keys.guardians}
        answers: dict[int, T] = {}
        refusals: list[RemoteError] = []
        problems: list[str] = []
        shortfall = ""
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    g = tasks[task]
                    try:
                        answers[g.index] = task.result()
                    except RemoteError as exc:
                        problems.append(f"guardian {g.peer_id}: {exc}")
                        if not exc.unreachable:
                            refusals.append(exc)
                if len(answers) >= self.keys.threshold:
                    try:
                        return enough(answers)
                    except FederationUnreachable as exc:
                        shortfall = exc.message
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if refusals and len(answers) < self.keys.threshold:
            raise to_gateway_error(refusals[0], what)
        raise FederationUnreachable(
            f"{what}: {len(answers)} of {len(tasks)} guardians answered, {self.keys.threshold} good "
            f"answers needed ({'; '.join([shortfall, *problems] if shortfall else problems) or 'no details'})"
        )
