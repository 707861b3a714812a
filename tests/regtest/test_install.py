"""The copy `reckless install fedimint-gw` makes runs in lightningd as an important plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.reckless import reckless_install

pytestmark = [pytest.mark.regtest, pytest.mark.reckless]


def test_reckless_installed_plugin_runs_as_important_plugin(
    node_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    installed = reckless_install(tmp_path_factory.mktemp("reckless"))
    from ephemeral_port_reserve import reserve

    # What the README asks operators to do: the plugin= line reckless wrote, made important.
    node = node_factory.get_node(
        options={
            "important-plugin": str(installed.entry),
            "fedimint-gw-api-bind": f"127.0.0.1:{reserve()}",
            "xpay-slow-mode": "true",  # the gateway refuses to start without it
        }
    )
    info = node.rpc.call("fedimint-info")
    assert info["node_id"] == node.info["id"] and info["federations"] == []
    plugins = {Path(p["name"]).name: p for p in node.rpc.plugin_list()["plugins"]}
    assert plugins["fedimint-gw.py"]["active"]
    backup = Path(node.daemon.lightning_dir) / "gw-backup.sqlite3"
    assert node.rpc.call("fedimint-backup", {"path": str(backup)})["path"] == str(backup)
    assert backup.is_file()
