"""One lying guardian plus a user cannot make the gateway pay for a contract that does not exist
(issue 14, finding 3), through the gateway's public API and send flow."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from contrib.devfed.client import http_json
from contrib.devfed.codec import object_id
from contrib.devfed.contracts import ContractState, contract_view
from contrib.devfed.errors import DevfedError
from contrib.devfed.wallet_ln import OUTGOING_TIMELOCK_BLOCKS
from fedimint_gw.domain.ids import FederationId
from tests.e2e.conftest import Env
from tests.e2e.helpers import external_invoice


async def test_a_contract_one_guardian_made_up_is_never_paid(env: Env) -> None:
    fed = await env.federation("liar", (1,))
    await env.gateway.federations.connect(fed.invite_code)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    await env.fund_gateway(fed, 10_000)  # the gateway has talked to its guardians already
    # The attacker can collect this invoice: the gateway's node would succeed paying it.
    payment_hash = env.node.add_payee(secrets.token_bytes(32))
    invoice = external_invoice(payment_hash, 30_000)
    height = await fed.federation.chain.height()
    body: dict[str, object] = {  # locked to the gateway, paying invoice + fee, never funded
        "kind": "outgoing_contract",
        "payment_hash": payment_hash,
        "amount_msat": 40_000,
        "gateway_pubkey": client.gateway_pubkey,
        "refund_pubkey": "02" + secrets.token_hex(32),
        "timelock_height": height + OUTGOING_TIMELOCK_BLOCKS,
    }
    cid = object_id(body)
    lie = contract_view(cid, body, ContractState.FUNDED, {"funded_txid": secrets.token_hex(32)})
    async with env.session.post(
        f"{fed.admin_url}/admin/guardians/0/fault", json={"mode": "lying", "contracts": {cid: lie}}
    ) as resp:
        resp.raise_for_status()
    request = {
        "federation_id": fed.federation_id,
        "contract_id": cid,
        "invoice": invoice,
        "preimage_auth": hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
    }
    with pytest.raises(DevfedError):
        await http_json(env.session, "POST", f"{env.api_url}/v1/pay_invoice", request)
    assert payment_hash not in env.node.pay_calls  # nothing was paid over Lightning
