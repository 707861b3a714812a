"""Run devfed federations as separate processes next to pyln-testing's nodes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass
class DevfedProcess:
    """One `devfed run` process and what it published in its status file."""

    proc: subprocess.Popen[bytes]
    data_dir: Path
    status: dict[str, Any]

    @property
    def invite_code(self) -> str:
        return str(self.status["invite_code"])

    @property
    def federation_id(self) -> str:
        return str(self.status["federation_id"])

    @property
    def admin_url(self) -> str:
        return str(self.status["admin_url"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_fedimint_devfed(data_dir: Path, name: str) -> DevfedProcess:
    """Start `devfed run --api fedimint --fedimint-ln` (Fedimint's protocol: mint + LNv1)."""
    return _start_fedimint(data_dir, name, "--fedimint-ln")


def start_fedimint_lnv2_devfed(data_dir: Path, name: str) -> DevfedProcess:
    """Start `devfed run --api fedimint --fedimint-lnv2` (Fedimint's protocol: mint + LNv2)."""
    return _start_fedimint(data_dir, name, "--fedimint-lnv2")


def _start_fedimint(data_dir: Path, name: str, module_flag: str) -> DevfedProcess:
    status = data_dir / "fedimint" / "fedimint-status.json"
    return start_devfed(data_dir, name, "fedimint", extra=(module_flag,), status_file=status)


def start_devfed(
    data_dir: Path,
    name: str,
    api: str,
    bitcoind_rpc: str | None = None,
    *,
    extra: tuple[str, ...] = (),
    status_file: Path | None = None,
) -> DevfedProcess:
    """Start `devfed run` and wait (up to 30 s) for its status file (default `status.json`)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    status_file = status_file or data_dir / "status.json"
    status_file.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "contrib.devfed.cli",
        "run",
        "--name",
        name,
        "--api",
        api,
        "--data-dir",
        str(data_dir),
    ]
    if bitcoind_rpc:
        cmd += ["--bitcoind-rpc", bitcoind_rpc]
    cmd += extra
    log = open(data_dir / "devfed.log", "ab")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"devfed {name} exited: see {data_dir / 'devfed.log'}")
        if status_file.exists():
            try:
                return DevfedProcess(proc, data_dir, json.loads(status_file.read_text()))
            except ValueError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"devfed {name} did not start in 30 s")
