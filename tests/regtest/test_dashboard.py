"""The dashboard served by the plugin inside a real lightningd, and refused where it would be open."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest
from pyln.client import RpcError
from pyln.testing.utils import wait_for

pytestmark = pytest.mark.regtest


def test_dashboard_in_lightningd(node_factory: Any, gw_opts: Any) -> None:
    from ephemeral_port_reserve import reserve

    port = reserve()
    l1 = node_factory.get_node(options=gw_opts(**{"fedimint-gw-dashboard-bind": f"127.0.0.1:{port}"}))
    wait_for(
        lambda: l1.daemon.is_in_log(rf"dashboard on http://127.0.0.1:{port}/ \(loopback only, no token\)")
    )
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
        page = r.read().decode()
        assert r.status == 200 and r.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert f"<span class='mono' id='node-id'>{l1.info['id']}</span>" in page
    assert 'data-state="ok"' in page and "lightningd</dt><dd>v26" in page
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 405


def test_an_open_dashboard_without_token_is_refused(node_factory: Any, gw_opts: Any) -> None:
    l1 = node_factory.get_node(options=gw_opts(**{"fedimint-gw-dashboard-bind": "0.0.0.0:8176"}))
    assert l1.daemon.is_in_log(
        r"fedimint-gw cannot start: fedimint-gw-dashboard-bind 0.0.0.0:8176 is not a loopback"
    )
    with pytest.raises(RpcError):
        l1.rpc.call("fedimint-info")


@pytest.mark.browser
def test_watching_the_gateway_in_chromium(node_factory: Any, gw_opts: Any) -> None:
    """What the README promises: the plugin in lightningd, its dashboard in a browser."""
    from ephemeral_port_reserve import reserve

    from tests.support.browser import headless_chromium, screenshot_path

    port = reserve()
    l1 = node_factory.get_node(options=gw_opts(**{"fedimint-gw-dashboard-bind": f"127.0.0.1:{port}"}))
    wait_for(lambda: l1.daemon.is_in_log(rf"dashboard on http://127.0.0.1:{port}/"))
    with headless_chromium() as browser:
        browser.get(f"http://127.0.0.1:{port}/")
        assert browser.find_element("css selector", "#node-id").text == l1.info["id"]
        assert browser.find_element("css selector", "#health").get_attribute("data-state") == "ok"
        assert browser.find_element("css selector", "#federations-empty").text.startswith("No federation")
        assert browser.save_screenshot(str(screenshot_path("dashboard-lightningd.png")))
