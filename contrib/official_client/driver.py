"""The official Fedimint client (npm WASM build) under Node, driven from Python.

`js/driver.mjs` loads the WASM client and speaks JSON lines on stdin/stdout; `OfficialClient`
starts it as a subprocess and turns each request into an awaitable with a timeout. The driver's
stderr (its trace: requests, WebSocket frames the client sends and receives, errors) is kept in
`OfficialClient.trace` for assertions and for failure messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLIENT_DIR = Path(__file__).resolve().parent / "js"
DRIVER = CLIENT_DIR / "driver.mjs"
MIN_NODE_MAJOR = 20
# Node ships WebSocket as a global from 22 on; 20 and 21 need the flag.
WEBSOCKET_DEFAULT_FROM_MAJOR = 22
PINNED_PACKAGES = {"@fedimint/fedimint-client-wasm-bundler": "0.1.0", "fake-indexeddb": "6.2.8"}
DEFAULT_TIMEOUT = 20.0
START_TIMEOUT = 20.0
TRACE_LINES = 2000

Json = Any


class OfficialClientError(Exception):
    """The official client (or the driver) answered a request with an error."""

    def __init__(self, op: str, message: str) -> None:
        super().__init__(f"{op}: {message}")
        self.op = op
        self.message = message


def node_major(node: str) -> int | None:
    """The major version of the `node` binary, or None if it does not answer."""
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.fullmatch(r"v(\d+)\..*", out.stdout.strip())
    return int(match.group(1)) if match else None


def missing_requirements() -> list[str]:
    """What is missing to run the official client; empty when everything is there."""
    node = shutil.which("node")
    if node is None:
        return [f"node (>= {MIN_NODE_MAJOR}) not on PATH"]
    major = node_major(node)
    if major is None or major < MIN_NODE_MAJOR:
        return [f"node >= {MIN_NODE_MAJOR} needed, found {major}"]
    missing = []
    for name, version in PINNED_PACKAGES.items():
        manifest = CLIENT_DIR / "node_modules" / name / "package.json"
        try:
            found = json.loads(manifest.read_text())["version"]
        except (OSError, ValueError, KeyError):
            missing.append(f"npm package {name}@{version} not installed (run `make interop-deps`)")
            continue
        if found != version:
            missing.append(f"npm package {name} is {found}, pinned {version} (run `make interop-deps`)")
    return missing


def node_command() -> list[str]:
    """The command line that runs the driver with this machine's node."""
    node = shutil.which("node")
    if node is None:
        raise FileNotFoundError("node is not on PATH")
    major = node_major(node) or MIN_NODE_MAJOR
    flags = ["--experimental-websocket"] if major < WEBSOCKET_DEFAULT_FROM_MAJOR else []
    return [node, *flags, str(DRIVER)]


@dataclass
class _Pending:
    op: str
    future: asyncio.Future[Json]


@dataclass
class OfficialClient:
    """A running driver process: one WASM client runtime (it may hold several joined clients)."""

    process: asyncio.subprocess.Process
    trace: deque[dict[str, Json]] = field(default_factory=lambda: deque(maxlen=TRACE_LINES))
    events: list[dict[str, Json]] = field(default_factory=list)
    _pending: dict[int, _Pending] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _event_added: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def start(cls, *, timeout: float = START_TIMEOUT) -> OfficialClient:
        """Start the driver and wait until it has loaded the WASM client."""
        process = await asyncio.create_subprocess_exec(
            *node_command(),
            cwd=CLIENT_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
            limit=16 * 1024 * 1024,
        )
        client = cls(process)
        client._tasks = [
            asyncio.create_task(client._read_stdout()),
            asyncio.create_task(client._read_stderr()),
        ]
        try:
            await asyncio.wait_for(client._ready.wait(), timeout)
        except asyncio.TimeoutError:
            await client.close()
            tail = client.trace_tail()
            raise TimeoutError(f"driver not ready after {timeout}s; trace tail:\n{tail}") from None
        if process.returncode is not None:
            raise OfficialClientError("start", f"driver exited: {client.events}\n{client.trace_tail()}")
        return client

    async def request(self, op: str, *, timeout: float = DEFAULT_TIMEOUT, **args: Json) -> Json:
        """Send one request and return its result; raise OfficialClientError on an error answer."""
        if self.process.returncode is not None or self.process.stdin is None:
            raise OfficialClientError(op, f"driver has exited ({self.process.returncode})")
        request_id = next(self._ids)
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(op, future)
        self.process.stdin.write(json.dumps({"id": request_id, "op": op, **args}).encode() + b"\n")
        await self.process.stdin.drain()
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            tail = self.trace_tail()
            raise TimeoutError(f"{op}: no answer after {timeout}s; trace tail:\n{tail}") from None
        finally:
            self._pending.pop(request_id, None)

    async def parse_invite_code(self, invite: str) -> Json:
        """The client's reading of an invite code: {"federation_id", "url"}."""
        return await self.request("parse_invite_code", invite=invite)

    async def parse_bolt11_invoice(self, invoice: str) -> Json:
        """The client's reading of a bolt11 invoice: {"amount" (sat, float), "expiry", "memo"}."""
        return await self.request("parse_bolt11_invoice", invoice=invoice)

    async def preview_federation(self, invite: str, *, timeout: float = DEFAULT_TIMEOUT) -> Json:
        """Download and check the federation's config without joining."""
        return await self.request("preview_federation", invite=invite, timeout=timeout)

    async def join(self, client_name: str, invite: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Join the federation of `invite` as a new client `client_name`."""
        await self.request("join", client_name=client_name, invite=invite, timeout=timeout)

    async def open(self, client_name: str) -> bool:
        """Reopen a client joined earlier in this driver process; False if there is none."""
        result = await self.request("open", client_name=client_name)
        return bool(result["opened"])

    async def rpc(
        self,
        module: str,
        method: str,
        payload: Json = None,
        *,
        client_name: str | None = None,
        max_items: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[Json]:
        """Call a client RPC ('' for the root module) and return every value it streamed."""
        args: dict[str, Json] = {"module": module, "method": method, "payload": payload or {}}
        if client_name is not None:
            args["client_name"] = client_name
        if max_items is not None:
            args["max_items"] = max_items
        result = await self.request("rpc", timeout=timeout, **args)
        if not isinstance(result, list):
            raise OfficialClientError("rpc", f"expected a list of items, got {result!r}")
        return result

    async def rpc_one(self, module: str, method: str, payload: Json = None, **kwargs: Any) -> Json:
        """Call a client RPC that answers one value."""
        items = await self.rpc(module, method, payload, **kwargs)
        if len(items) != 1:
            raise OfficialClientError("rpc", f"{module}.{method}: expected one item, got {items!r}")
        return items[0]

    async def wait_for_event(self, name: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Json]:
        """The first driver event named `name` (e.g. "uncaught"), waiting for it if need be."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self.events:
                if event.get("event") == name:
                    return event
            self._event_added.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(self._event_added.wait(), max(remaining, 0))
            except asyncio.TimeoutError:
                raise TimeoutError(f"no {name!r} event after {timeout}s: {self.events}") from None

    def ws_frames(self, kind: str = "ws_send") -> list[Json]:
        """JSON frames the client sent (`ws_send`) or received (`ws_recv`), as traced by the driver."""
        frames = []
        for line in self.trace:
            if line.get("kind") == kind and isinstance(line.get("data"), str):
                with contextlib.suppress(ValueError):
                    frames.append(json.loads(line["data"]))
        return frames

    def trace_tail(self, lines: int = 40) -> str:
        """The last trace lines, for error messages."""
        return "\n".join(json.dumps(line) for line in list(self.trace)[-lines:])

    async def close(self, *, timeout: float = 5.0) -> None:
        """Stop the driver (politely, then by force) and fail what is still pending."""
        if self.process.returncode is None and self.process.stdin is not None:
            # "shutdown" exits at once; end of input alone would let running requests finish first.
            with contextlib.suppress(OSError, ConnectionError):
                self.process.stdin.write(json.dumps({"id": 0, "op": "shutdown"}).encode() + b"\n")
                await self.process.stdin.drain()
                self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout)
        self._fail_pending("driver closed")

    async def _read_stdout(self) -> None:
        if self.process.stdout is None:
            raise RuntimeError("driver started without a stdout pipe")
        async for raw in self.process.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                self.trace.append({"kind": "stdout_garbage", "data": raw.decode(errors="replace")})
                continue
            if "id" not in message:
                self.events.append(message)
                self._event_added.set()
                if message.get("event") == "ready":
                    self._ready.set()
                continue
            pending = self._pending.get(message["id"]) if isinstance(message["id"], int) else None
            if pending is None or pending.future.done():
                continue
            if "error" in message:
                pending.future.set_exception(OfficialClientError(pending.op, str(message["error"])))
            else:
                pending.future.set_result(message.get("result"))
        self._ready.set()
        self._fail_pending(f"driver exited ({await self.process.wait()}); trace tail:\n{self.trace_tail()}")

    async def _read_stderr(self) -> None:
        if self.process.stderr is None:
            raise RuntimeError("driver started without a stderr pipe")
        async for raw in self.process.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"kind": "stderr", "data": raw.decode(errors="replace").rstrip()}
            self.trace.append(line if isinstance(line, dict) else {"kind": "stderr", "data": line})

    def _fail_pending(self, reason: str) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(OfficialClientError(pending.op, reason))
