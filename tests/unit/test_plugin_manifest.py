"""The plugin's manifest, as lightningd reads it at start (no lightningd needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[2] / "plugin" / "fedimint_gateway.py"


def _manifest() -> dict[str, object]:
    request = {"jsonrpc": "2.0", "id": 1, "method": "getmanifest", "params": {"allow-deprecated-apis": False}}
    proc = subprocess.run(
        [sys.executable, str(PLUGIN)],
        input=json.dumps(request) + "\n\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LIGHTNINGD_PLUGIN": "1"},  # as lightningd starts it
    )
    answer = json.loads(proc.stdout.strip().splitlines()[0])
    result: dict[str, object] = answer["result"]
    return result


def test_the_plugin_is_not_dynamic() -> None:
    # `lightning-cli plugin stop` must not be able to kill the plugin while it holds HTLCs.
    manifest = _manifest()
    assert manifest["dynamic"] is False
    hooks = [h["name"] if isinstance(h, dict) else h for h in manifest["hooks"]]  # type: ignore[attr-defined]
    assert "htlc_accepted" in hooks
