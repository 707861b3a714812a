"""Fedimint ecash operations killed inside lightningd (v26.06) and settled at the next start:
`fedimint-ecash-send` with the plugin killed (SIGKILL, `important-plugin`) right after the
spend's transaction is stored, against devfed's Fedimint family (mint + lnv2, as a process).
- without `request_id` nobody can ask for the notes again: they come back to the gateway;
- with one, the retry after the restart returns the notes of the first call, spent once.
Balances are exact (no mint fees in this federation)."""

from __future__ import annotations

from typing import Any

import pytest
from pyln.testing.utils import wait_for

from tests.regtest.crashing import crash_at, crashing_opts
from tests.regtest.test_fedimint_ln import LoopThread
from tests.regtest.test_fedimint_lnv2 import User, _ecash, user_loop

pytestmark = pytest.mark.regtest
FUNDS = 300_000


def test_ecash_sends_killed_after_storing_are_settled_at_restart(
    node_factory: Any,
    gw_opts: Any,
    lnv2_devfed: dict[str, Any],
    user_loop: LoopThread,
    executor: Any,
) -> None:
    [l2] = node_factory.get_nodes(1, opts=[crashing_opts(gw_opts)])
    invite, admin = lnv2_devfed["invite_code"], lnv2_devfed["admin_url"]
    joined = l2.rpc.call("fedimint-connect", {"invite_code": invite})
    assert joined["adapter"] == "fedimint-lnv2", joined
    fid = joined["federation_id"]
    user = User(user_loop, invite, admin)
    try:
        got = l2.rpc.call("fedimint-ecash-receive", {"federation_id": fid, "notes": user.oob(FUNDS)})
        assert got["received_msat"] == FUNDS

        # without request_id: the notes string was never shown to anybody, so the notes come back
        volatile = crash_at(
            l2,
            "ecash:fm_spend:prepared",
            lambda: executor.submit(
                l2.rpc.call, "fedimint-ecash-send", {"federation_id": fid, "amount_msat": 40_000}
            ),
        )
        with pytest.raises(Exception):  # noqa: B017 - the plugin died under the call
            volatile.result(timeout=60)
        wait_for(lambda: _ecash(l2, fid) == FUNDS, timeout=120)

        # with request_id: the retry returns the first call's notes, spent once
        params = {"federation_id": fid, "amount_msat": 25_000, "request_id": "crash-retry-1"}
        kept = crash_at(
            l2, "ecash:fm_spend:prepared", lambda: executor.submit(l2.rpc.call, "fedimint-ecash-send", params)
        )
        with pytest.raises(Exception):  # noqa: B017
            kept.result(timeout=60)
        wait_for(lambda: _ecash(l2, fid) == FUNDS - 25_000, timeout=120)  # finished at the restart
        first = l2.rpc.call("fedimint-ecash-send", params)
        again = l2.rpc.call("fedimint-ecash-send", params)
        assert first["amount_msat"] == 25_000 and first["notes"] == again["notes"]
        assert _ecash(l2, fid) == FUNDS - 25_000
        back = l2.rpc.call("fedimint-ecash-receive", {"federation_id": fid, "notes": first["notes"]})
        assert back["received_msat"] == 25_000  # real notes, worth what they say
        assert _ecash(l2, fid) == FUNDS
    finally:
        user.close()
