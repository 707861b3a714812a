"""The dashboard in headless Chromium: what an operator sees after real payments.

A devfed federation, a Lightning receive through the gateway (the e2e path: fake node, real
federation), a second federation whose name is an HTML injection attempt, and a peer gateway
that cannot be reached with two ledger entries. The page is checked through the DOM and saved as
a screenshot in test-artifacts/.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from contrib.devfed import wallet_ln
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.peer.ledger import Entry
from fedimint_gw.store import peers as peer_repo
from tests.browser.conftest import dashboard_url
from tests.e2e.conftest import Env
from tests.e2e.helpers import claim_receive, route_hop
from tests.support.browser import screenshot_path
from tests.support.fake_node import forward_payload

pytestmark = pytest.mark.browser


class By:
    """Selenium's locator names (selenium.webdriver.common.by.By), without importing selenium
    at collection time: where it is missing the tests are skipped loudly instead."""

    CSS_SELECTOR = "css selector"
    TAG_NAME = "tag name"


HOSTILE = '<script>document.title="owned"</script><img src=x>'
PEER = "02" + "ab" * 32


async def _receive(env: Env, fed: Any, scid: str, amount: int) -> None:
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "alice")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, amount, "coffee")
    hop = route_hop(receive.bolt11)
    fee = hop.fee_base_msat + amount * hop.fee_proportional_millionths // 1_000_000
    height = env.node.block_height
    answer = await env.htlc(
        *forward_payload(scid, receive.payment_hash, amount, amount + fee, height + 100, height)
    )
    assert answer["result"] == "resolve"
    assert await claim_receive(user, receive) == amount


async def _open(browser: Any, url: str) -> None:
    await asyncio.to_thread(browser.get, url)


def _one(browser: Any, css: str) -> Any:
    found = browser.find_elements(By.CSS_SELECTOR, css)
    assert len(found) == 1, f"{css}: {len(found)} elements"
    return found[0]


async def test_dashboard_in_chromium(dash_env: Env, browser: Any) -> None:
    env = dash_env
    fed = await env.federation("Main Street", (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 200_000)
    await _receive(env, fed, info["scid"], 50_000)
    odd = await env.federation(HOSTILE, (1,))
    await env.gateway.federations.connect(odd.invite_code)
    await env.gateway.peer_add(PEER, "http://127.0.0.1:9/", 5_000_000)  # nobody listens there
    now = int(time.time())
    async with env.gateway.db.transaction() as conn:
        await peer_repo.add_entry(conn, PEER, Entry("forward:f1", 7_000), now)
        await peer_repo.add_entry(conn, PEER, Entry("settlement:s1", -3_000), now)

    await _open(browser, dashboard_url(env))
    assert browser.title.startswith("fedimint-gw")

    # Health: the unreachable peer makes it degraded, and says so.
    health = _one(browser, "#health")
    assert health.get_attribute("data-state") == "degraded"
    assert _one(browser, "#feds-connected").text == "2"
    assert any(
        PEER[:16] in li.text and "unreachable" in li.text for li in health.find_elements(By.TAG_NAME, "li")
    )
    assert _one(browser, "#node-id").text == env.node.node_id

    # Federations: protocol and version, ecash, fees, limits, status.
    row = _one(browser, f'#federations tr[data-federation-id="{fed.federation_id}"]')
    assert row.find_element(By.CSS_SELECTOR, ".name").text == "Main Street"
    assert row.find_element(By.CSS_SELECTOR, ".protocol").text == "devfed-v1"
    assert row.find_element(By.CSS_SELECTOR, ".api-version").text.startswith("1.")
    ecash = (await env.gateway.federations.client(FederationId(fed.federation_id)).balance()).value
    assert ecash == 150_000
    assert row.find_element(By.CSS_SELECTOR, ".ecash").get_attribute("data-msat") == str(ecash)
    assert "ppm" in row.find_element(By.CSS_SELECTOR, ".fees").text
    assert "receives up to 150,000 msat" in row.find_element(By.CSS_SELECTOR, ".limits").text
    assert row.find_element(By.CSS_SELECTOR, ".status").text.startswith("connected")

    # The hostile federation name is text, not markup: no script ran, no element was injected.
    odd_row = _one(browser, f'#federations tr[data-federation-id="{odd.federation_id}"]')
    assert odd_row.find_element(By.CSS_SELECTOR, ".name").text == HOSTILE
    assert (
        browser.find_elements(By.TAG_NAME, "script") == [] and browser.find_elements(By.TAG_NAME, "img") == []
    )
    assert browser.title != "owned"

    # Recent payments: the receive, succeeded, with its amount.
    receives = [
        r
        for r in browser.find_elements(By.CSS_SELECTOR, "#payments tr[data-payment-id]")
        if r.find_element(By.CSS_SELECTOR, ".kind").text == "receive"
    ]
    assert len(receives) == 1
    assert receives[0].find_element(By.CSS_SELECTOR, ".state").text == "succeeded"
    assert receives[0].find_element(By.CSS_SELECTOR, ".amount").get_attribute("data-msat") == "50000"

    # Peers and their ledgers.
    peer = _one(browser, f'#peers tr[data-node-id="{PEER}"]')
    assert peer.find_element(By.CSS_SELECTOR, ".balance").get_attribute("data-msat") == "4000"
    ledger = _one(browser, f'table.ledger[data-node-id="{PEER}"]')
    deltas = sorted(
        td.get_attribute("data-msat") for td in ledger.find_elements(By.CSS_SELECTOR, "td[data-msat]")
    )
    assert deltas == ["-3000", "7000"]

    # Charts: today's bars carry today's volume (50 sat) and a latency.
    today = time.strftime("%Y-%m-%d", time.gmtime())
    volume = _one(browser, f'#volume-chart rect.volume[data-label="{today}"]')
    assert volume.get_attribute("data-value") == "50"
    assert float(volume.get_attribute("height")) > 0
    p50 = _one(browser, f'#latency-chart rect.p50[data-label="{today}"]')
    assert float(p50.get_attribute("data-value")) >= 0 and p50.get_attribute("data-value") != ""
    assert len(browser.find_elements(By.CSS_SELECTOR, "#volume-chart rect.volume")) == 14

    # Nothing was loaded from anywhere: one document, no subresource.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0

    shot = screenshot_path("dashboard.png")
    assert await asyncio.to_thread(browser.save_screenshot, str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_empty_dashboard_in_chromium(dash_env: Env, browser: Any) -> None:
    await _open(browser, dashboard_url(dash_env))
    assert _one(browser, "#health").get_attribute("data-state") == "ok"
    assert _one(browser, "#federations-empty").text.startswith("No federation")
    assert _one(browser, "#payments-empty").is_displayed() and _one(browser, "#peers-empty").is_displayed()
    assert all(
        r.get_attribute("data-value") == "0" for r in browser.find_elements(By.CSS_SELECTOR, "rect.volume")
    )
    assert await asyncio.to_thread(browser.save_screenshot, str(screenshot_path("dashboard-empty.png")))
