"""Detached daemons: start them in their own session, recognise them later, stop them for good.

Every daemon the launcher starts runs in a new session (``start_new_session``), so it keeps
running after the launcher exits and its process group holds everything it spawns (lightningd's
subdaemons and plugins). A recorded PID is only trusted while ``/proc/PID/cmdline`` still
mentions the network directory, so a recycled PID is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class LaunchError(RuntimeError):
    """A step of the launcher failed; the message says what to look at."""


@dataclass(frozen=True)
class Daemon:
    """One started daemon: its name, PID (= process group id), command line and log file."""

    name: str
    pid: int
    marker: str
    log: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``network.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Daemon:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["name"]), int(data["pid"]), str(data["marker"]), str(data["log"]))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (held open together so none is handed out twice)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def spawn(name: str, cmd: Sequence[str], log: Path, marker: str, cwd: Path | None = None) -> Daemon:
    """Start ``cmd`` detached (new session, stdin closed, output appended to ``log``)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            env={**os.environ},
        )
    return Daemon(name, proc.pid, marker, str(log))


def _proc_state(pid: int) -> str | None:
    """The state letter from ``/proc/PID/stat`` (``None`` if there is no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _pgid_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[2])


def is_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    if Path("/proc").is_dir():
        state = _proc_state(pid)
        return state is not None and state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_ours(daemon: Daemon) -> bool:
    """Whether ``daemon.pid`` is alive and still the process we started (its command line)."""
    if not is_alive(daemon.pid):
        return False
    try:
        cmdline = Path(f"/proc/{daemon.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return True  # no /proc: trust the PID
    return daemon.marker in cmdline


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (Linux ``/proc`` only; else just the leader)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return [pgid] if is_alive(pgid) else []
    found = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            if _pgid_of(pid) == pgid and is_alive(pid):
                found.append(pid)
    return found


def log_tail(path: str, lines: int = 5) -> str:
    """The last ``lines`` lines of a log file (for error messages)."""
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n    ".join(text[-lines:])


def wait_for(
    what: str,
    check: Callable[[], T | None],
    timeout: float,
    interval: float = 0.2,
    watch: Daemon | None = None,
) -> T:
    """Poll ``check`` until it returns something other than ``None``/``False``; else LaunchError.

    With ``watch``, give up at once (quoting its log) if that daemon exits.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        if watch is not None and not is_alive(watch.pid):
            raise LaunchError(f"{watch.name} exited while waiting for {what}:\n    {log_tail(watch.log)}")
        try:
            value = check()
            if value is not None and value is not False:
                return value
        except Exception as exc:  # retried until the deadline, then reported
            last = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last})" if last else ""
            raise LaunchError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_members(pgid):
            return True
        time.sleep(0.1)
    return not group_members(pgid)


def terminate(daemon: Daemon, graceful: Callable[[], None] | None = None, timeout: float = 20) -> str:
    """Stop ``daemon`` and everything in its process group; returns what it took.

    ``graceful`` (e.g. ``lightning-cli stop``) is tried first, then SIGTERM to the group, then
    SIGKILL. A PID that is no longer ours is left alone.
    """
    if not is_ours(daemon):
        if is_alive(daemon.pid):
            return "PID reused by another program: left alone"
        if not group_members(daemon.pid):
            return "not running"
        _signal_group(daemon.pid, signal.SIGKILL)  # orphans of our own dead leader
        return "cleaned up leftovers" if _gone(daemon.pid, 5) else "leftovers remain"
    if graceful is not None:
        with contextlib.suppress(Exception):  # it may already be going: signals follow
            graceful()
        if _gone(daemon.pid, timeout):
            return "stopped"
    _signal_group(daemon.pid, signal.SIGTERM)
    if _gone(daemon.pid, timeout):
        return "terminated"
    _signal_group(daemon.pid, signal.SIGKILL)
    return "killed" if _gone(daemon.pid, 5) else "could not be killed"
