"""Our own LNv2 user wallet for tests (no official LNv2 client exists here).

It builds contracts the way Fedimint's LNv2 client does (an incoming contract encrypts the
preimage to the federation's tpe key, bound to the commitment; an outgoing contract locks
ecash to the gateway's claim key until a block height), funds them with mint notes from
devfed's faucet, and spends them back into notes (claim, refund, cancel). Zero fees.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from contrib.devfed.fedimint.faucet import faucet_notes, fresh_secrets
from contrib.devfed.fedimint.keys import LNV2_INSTANCE_ID, MINT_INSTANCE_ID
from fedimint_gw.fedimint.config import ClientConfig
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.lnv2 import transactions as txs
from fedimint_gw.fedimint.lnv2.config import Lnv2ClientConfig
from fedimint_gw.fedimint.lnv2.contracts import (
    ContractTerms,
    IncomingContract,
    OutgoingContract,
    PaymentImage,
)
from fedimint_gw.fedimint.lnv2.keys import public_key_of
from fedimint_gw.fedimint.mint_api import collect_notes, submit_transaction
from fedimint_gw.fedimint.mint_client import FinishedNote, fees_of, represent_amount
from fedimint_gw.fedimint.mint_types import MintClientConfig
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import OutPoint, Transaction, TransactionSubmissionOutcome


def secret_key() -> bytes:
    return secrets.token_bytes(31) + b"\x01"


class _HasClientConfig(Protocol):
    @property
    def client_config(self) -> ClientConfig: ...


class FedimintHandle(Protocol):
    """What the wallet needs of a devfed Fedimint federation: its client config and admin URL
    (a RunningFedimint in-process, or `RemoteFedimint` for devfed run as a process)."""

    @property
    def admin_url(self) -> str: ...

    @property
    def federation(self) -> _HasClientConfig: ...


@dataclass(frozen=True)
class RemoteConfig:
    client_config: ClientConfig


@dataclass(frozen=True)
class RemoteFedimint:
    """A devfed Fedimint federation running in another process (regtest)."""

    admin_url: str
    federation: RemoteConfig


@dataclass(frozen=True)
class Submitted:
    tx: Transaction
    outcome: TransactionSubmissionOutcome

    @property
    def accepted(self) -> bool:
        return self.outcome.accepted


class Lnv2Wallet:
    """One party (user or gateway) with a key, driving LNv2 transactions against devfed."""

    def __init__(self, fm: FedimintHandle, api: FederationApi, session: aiohttp.ClientSession) -> None:
        self.fm = fm
        self.api = api
        self.session = session
        self.key = secret_key()
        config = fm.federation.client_config
        self.config = Lnv2ClientConfig.from_bytes(config.modules[LNV2_INSTANCE_ID].raw)
        self.mint = MintClientConfig.from_bytes(config.modules[MINT_INSTANCE_ID].raw)

    @property
    def public_key(self) -> bytes:
        return public_key_of(self.key)

    async def notes(self, amount: int) -> list[FinishedNote]:
        got = await faucet_notes(self.session, self.fm.admin_url, self.fm.federation.client_config, amount)
        return list(got.notes)

    def incoming_contract(
        self,
        gateway_pk: bytes,
        amount: int,
        expiration: int,
        preimage: bytes,
        encrypted: bytes | None = None,
    ) -> IncomingContract:
        """A receive to us (claim key ours, refund key the gateway's); ``encrypted`` lets a test
        encrypt something else than the preimage (an invalid contract)."""
        commitment = ContractTerms(
            PaymentImage.of_hash(hashlib.sha256(preimage).digest()),
            amount,
            expiration,
            claim_pk=self.public_key,
            refund_pk=gateway_pk,
            ephemeral_pk=public_key_of(secret_key()),
        )
        return IncomingContract.create(
            self.config.tpe_agg_pk, secrets.token_bytes(32), encrypted or preimage, commitment
        )

    def outgoing_contract(
        self, gateway_pk: bytes, amount: int, expiration: int, payment_hash: bytes
    ) -> OutgoingContract:
        """A send from us: claim key the gateway's, refund key ours."""
        return OutgoingContract(
            ContractTerms(
                PaymentImage.of_hash(payment_hash),
                amount,
                expiration,
                claim_pk=gateway_pk,
                refund_pk=self.public_key,
                ephemeral_pk=public_key_of(secret_key()),
            )
        )

    async def fund(self, output: items.LightningOutput, amount: int) -> tuple[Submitted, OutPoint]:
        """Spend faucet notes worth ``amount`` plus the LNv2 fee into one LNv2 output (index 0),
        plus the mint's fee on each of those notes when the federation charges one."""
        notes = await self.notes(self._with_input_fees(amount + self.config.fee.fee(amount)))
        inputs = [txs.note_input(MINT_INSTANCE_ID, n.amount, n.note) for n in notes]
        tx = txs.build(inputs, [txs.lnv2_output(LNV2_INSTANCE_ID, output)], secrets.token_bytes(8))
        outcome = await submit_transaction(self.api, tx)
        return Submitted(tx, outcome), OutPoint(tx.txid(), 0)

    def _with_input_fees(self, need: int) -> int:
        """The faucet amount whose notes, less the mint's fee per note spent, are worth `need`."""
        for total in range(need, need + 100_000):
            if (
                total - fees_of(self.mint.fee_consensus, represent_amount(total, self.mint.denominations))
                == need
            ):
                return total
        raise AssertionError(f"no faucet amount pays {need} msat net of the mint's fees")

    async def spend(self, value: items.LightningInput, amount: int, key: bytes | None = None) -> Submitted:
        """Spend one LNv2 input worth ``amount`` into fresh notes worth ``amount`` less the LNv2
        fee, signed by ``key`` (ours; the mint's fees must be zero)."""
        amount -= self.config.fee.fee(amount)
        outputs = [fresh_secrets(a) for a in represent_amount(amount, self.mint.denominations)]
        tx = txs.build(
            [txs.lnv2_input(LNV2_INSTANCE_ID, value, key or self.key)],
            [txs.note_output(MINT_INSTANCE_ID, o) for o in outputs],
            secrets.token_bytes(8),
        )
        outcome = await submit_transaction(self.api, tx)
        if outcome.accepted:
            notes = await collect_notes(self.api, MINT_INSTANCE_ID, self.mint, tx.txid(), outputs)
            if sum(n.amount for n in notes) != amount:
                raise AssertionError("the federation issued a different amount")
        return Submitted(tx, outcome)

    async def admin(self, body: dict[str, object]) -> dict[str, object]:
        async with self.session.post(f"{self.fm.admin_url}/admin/lnv2", json=body) as resp:
            data = await resp.json()
            if resp.status != 200:
                raise AssertionError(f"lnv2 admin refused: {data}")
            return dict(data)
