"""Fedimint's LNv2 routes at the root of the plugin's API, in a real lightningd: an unknown
federation's routing info is `null` (as gatewayd answers), malformed bodies are typed 400s.
(Joining an LNv2 federation needs the Fedimint connect path; the flows are covered by
tests/e2e/test_fedimint_lnv2_services.py with the fake node.)"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

pytestmark = pytest.mark.regtest


def _post(url: str, body: bytes) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_lnv2_root_routes_in_lightningd(node_factory: Any, gw_opts: Any) -> None:
    l1 = node_factory.get_node(options=gw_opts())
    api_url = l1.rpc.call("fedimint-info")["api_url"].rstrip("/")
    assert _post(api_url + "/routing_info", json.dumps("00" * 32).encode()) == (200, None)
    for path, body in [
        ("/routing_info", b'{"federation_id": "00"}'),
        ("/send_payment", b'{"federation_id": "00"}'),
        ("/create_bolt11_invoice", b"[]"),
    ]:
        status, answer = _post(api_url + path, body)
        assert status == 400 and answer["error"]["name"] in ("DecodeError", "InvalidInput"), (path, answer)
        assert "Traceback" not in json.dumps(answer)
