"""A federation's state in one object: store, keys, guardians, sequencer, block height.

API handlers of every version call the methods here; guardian-specific answers (signature
and decryption shares) are computed by that guardian with its own shares only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from contrib.devfed.chain import BitcoindHeight, CounterHeight, HeightSource
from contrib.devfed.config import GuardianSecrets, PublicConfig, build_config, deal_keys
from contrib.devfed.contracts import ContractState
from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.guardian import Guardian
from contrib.devfed.ledger import Sequencer
from contrib.devfed.store import FederationStore
from contrib.devfed.transactions import OutputKind, v2_contract_context
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.point import Point
from fedimint_gw.crypto.threshold_bdhke import BlindSignatureShare
from fedimint_gw.crypto.threshold_elgamal import Ciphertext, DecryptionShare

Json = dict[str, object]
DB_NAME = "federation.sqlite"


@dataclass(frozen=True)
class FederationParams:
    """What ``devfed run`` is told on first start (later starts reuse the stored config)."""

    name: str = "devfed"
    guardians: int = 4
    threshold: int = 3
    majors: tuple[int, ...] = (1, 2)
    tx_fee_msat: int = 0
    faucet_limit_msat: int = 100_000_000
    bitcoind_rpc: str | None = None


class Federation:
    """One federation (all guardians) backed by SQLite under ``data_dir``."""

    def __init__(
        self,
        store: FederationStore,
        config: PublicConfig,
        secrets: Sequence[GuardianSecrets],
        chain: HeightSource,
        clock: Callable[[], float],
        faucet_limit_msat: int,
    ) -> None:
        self.store = store
        self.config = config
        self.chain = chain
        self.guardians = [Guardian(s, config.ln_pubkey) for s in secrets]
        self.sequencer = Sequencer(config, self.guardians, store, chain, clock, faucet_limit_msat)

    @staticmethod
    def stored_config(data_dir: Path) -> PublicConfig | None:
        """The config persisted under ``data_dir``, if any (used to reuse ports on restart)."""
        db = data_dir / DB_NAME
        if not db.exists():
            return None
        store = FederationStore(db)
        try:
            raw = store.get_meta("config")
        finally:
            store.close()
        return None if raw is None else PublicConfig.from_dict(json.loads(raw))

    @classmethod
    def open(
        cls,
        data_dir: Path,
        params: FederationParams,
        urls: Sequence[str],
        clock: Callable[[], float] = time.time,
    ) -> Federation:
        """Open the federation in ``data_dir``, dealing keys on first start."""
        data_dir.mkdir(parents=True, exist_ok=True)
        store = FederationStore(data_dir / DB_NAME)
        raw = store.get_meta("config")
        if raw is None:
            keys = deal_keys(params.guardians, params.threshold)
            config = build_config(
                params.name, params.threshold, keys, urls, params.tx_fee_msat, params.majors
            )
            with store.atomic():
                for s in keys.secrets:
                    store.save_secrets(s.peer_id, s.to_dict())
                store.set_meta("config", json.dumps(config.to_dict()))
                store.set_meta("faucet_limit_msat", str(params.faucet_limit_msat))
                if params.bitcoind_rpc:
                    store.set_meta("bitcoind_rpc", params.bitcoind_rpc)
            secrets = list(keys.secrets)
        else:
            config = PublicConfig.from_dict(json.loads(raw))
            secrets = [GuardianSecrets.from_dict(s) for s in store.load_secrets()]
        rpc = params.bitcoind_rpc or store.get_meta("bitcoind_rpc")
        chain: HeightSource = BitcoindHeight(rpc) if rpc else CounterHeight(store)
        limit = int(store.get_meta("faucet_limit_msat") or params.faucet_limit_msat)
        return cls(store, config, secrets, chain, clock, limit)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    @property
    def federation_id(self) -> str:
        """sha256 of the canonical public config."""
        return self.config.federation_id

    def guardian(self, peer_id: int) -> Guardian:
        """A guardian by peer id, else ``unknown_guardian``."""
        if not 0 <= peer_id < len(self.guardians):
            raise DevfedError(ErrorCode.UNKNOWN_GUARDIAN, f"no guardian {peer_id}")
        return self.guardians[peer_id]

    def signature_shares(self, peer_id: int, txid: str) -> list[tuple[int, BlindSignatureShare]]:
        """This guardian's ``(output index, share)`` for every note output of an accepted tx."""
        body, _ = self.sequencer.transaction(txid)
        guardian = self.guardian(peer_id)
        shares = []
        outputs = body["outputs"]
        if not isinstance(outputs, list):
            raise DevfedError(ErrorCode.INTERNAL, "stored transaction is corrupt")
        for j, out in enumerate(outputs):
            if isinstance(out, dict) and out.get("kind") == OutputKind.NOTE.value:
                blinded = Point.from_hex(str(out["B_"]))
                shares.append((j, guardian.sign_blinded(int(out["amount_msat"]), blinded)))
        return shares

    def decryption_share(self, peer_id: int, contract_id: str) -> DecryptionShare:
        """v2: this guardian's decryption share, only for a funded incoming v2 contract."""
        body, state = self.sequencer.contract_body(contract_id)
        if body["kind"] != OutputKind.INCOMING_CONTRACT_V2.value:
            raise DevfedError(ErrorCode.CONTRACT_STATE, "decryption shares are for incoming v2 contracts")
        if state not in (ContractState.FUNDED, ContractState.CLAIMED, ContractState.REFUNDED):
            raise DevfedError(ErrorCode.NOT_FUNDED, f"contract is {state.value}")
        try:
            ciphertext = Ciphertext.from_dict(body["encrypted_preimage"])
            return self.guardian(peer_id).decryption_share(ciphertext, v2_contract_context(body))
        except CryptoError as exc:
            raise DevfedError(ErrorCode.CONTRACT_STATE, f"cannot decrypt: {exc}") from None
