"""The plugin inside a real lightningd: loads, answers commands, passes unrelated HTLCs."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pyln.client import RpcError
from pyln.testing.utils import only_one

pytestmark = pytest.mark.regtest


def test_plugin_loads_and_reports_info(node_factory: Any, gw_opts: Any) -> None:
    l1 = node_factory.get_node(options=gw_opts())
    info = l1.rpc.call("fedimint-info")
    assert info["node_id"] == l1.info["id"]
    assert info["network"] == "regtest"
    assert info["schema_version"] >= 1
    assert info["federations"] == [] and info["peers"] == []
    assert info["version"] and isinstance(info["supported_api_versions"], list)
    # The database defaults to the lightning dir of the network.
    assert info["database"] == os.path.join(l1.daemon.lightning_dir, "regtest", "fedimint-gw.sqlite3")
    assert os.path.exists(info["database"])


def test_help_describes_every_command(node_factory: Any, gw_opts: Any) -> None:
    l1 = node_factory.get_node(options=gw_opts())
    helps = l1.rpc.call("fedimint-help")["help"]
    names = {h["command"] for h in helps}
    assert "fedimint-info" in names
    assert all(len(h["description"]) > 10 for h in helps)
    with pytest.raises(RpcError, match="no command"):
        l1.rpc.call("fedimint-help", {"command": "fedimint-nope"})
    # The docstring is what `lightning-cli help fedimint-info` prints.
    shown = only_one(l1.rpc.help("fedimint-info")["help"])["command"]
    assert shown.startswith("fedimint-info") and "Show the gateway" in shown


def test_bad_option_disables_the_plugin_with_a_reason(node_factory: Any, gw_opts: Any) -> None:
    l1 = node_factory.get_node(options=gw_opts(**{"fedimint-gw-api-bind": "not-a-bind"}))
    assert l1.daemon.is_in_log(r"fedimint-gw cannot start: fedimint-gw-api-bind must be HOST:PORT")
    with pytest.raises(RpcError):
        l1.rpc.call("fedimint-info")


def test_unrelated_payments_pass_through_the_gateway_node(node_factory: Any, gw_opts: Any) -> None:
    # l1 -> l2 (gateway plugin) -> l3: forwards through l2 must be untouched.
    l1, l2, l3 = node_factory.line_graph(3, opts=[{}, gw_opts(), {}], wait_for_announce=True)
    for i in range(50):
        inv = l3.rpc.invoice(10_000 + i, f"unrelated-{i}", "unrelated forward")
        res = l1.rpc.call("xpay", {"invstring": inv["bolt11"]})
        assert res["amount_msat"] == 10_000 + i
    # And payments that end at the gateway node itself.
    inv = l2.rpc.invoice(5_000, "to-gateway", "final hop at the gateway")
    assert l1.rpc.call("xpay", {"invstring": inv["bolt11"]})["amount_msat"] == 5_000


def test_plugin_cannot_be_stopped_at_runtime(node_factory: Any, gw_opts: Any, plugin_path: str) -> None:
    # Not dynamic: `plugin stop` would kill it mid-hook and every funded HTLC it holds is lost.
    l1 = node_factory.get_node(options=gw_opts())
    with pytest.raises(RpcError, match="cannot be managed when lightningd is up"):
        l1.rpc.plugin_stop(plugin_path)
    assert l1.rpc.call("fedimint-info")["node_id"] == l1.info["id"]


def test_database_survives_restart(node_factory: Any, gw_opts: Any) -> None:
    l1 = node_factory.get_node(options=gw_opts(), may_reconnect=True)
    before = l1.rpc.call("fedimint-info")
    l1.restart()
    # The plugin left promptly on shutdown: lightningd did not have to kill it.
    assert not l1.daemon.is_in_log(r"fedimint-gw.*failed to self-terminate")
    after = l1.rpc.call("fedimint-info")
    assert after["database"] == before["database"]
    assert after["schema_version"] == before["schema_version"]
