"""Keys and the client config of devfed's Fedimint family.

A trusted dealer (at first start) makes one tbs key per note tier: a random polynomial of
degree ``threshold - 1``; guardian ``p`` (0-based) keeps its value at ``x = p + 1`` and nothing
else. The client config is Fedimint's (`fedimint_gw.fedimint.config`): the guardians' WebSocket
URLs and names, core consensus version, meta, and one module, the mint (kind ``mint``), whose
config carries the aggregate key and every guardian's public key share per tier, and the fees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contrib.devfed.fedimint.ln import LN_INSTANCE_ID
from contrib.devfed.fedimint.ln_store import LnStore
from contrib.devfed.fedimint.store import FedimintStore
from fedimint_gw.crypto.bls import dealer, tbs, tpe
from fedimint_gw.crypto.bls import threshold_crypto as tc
from fedimint_gw.crypto.bls.chacha import ChaChaRng
from fedimint_gw.fedimint.config import ClientConfig, ConsensusVersion, ModuleConfig, PeerUrl, threshold
from fedimint_gw.fedimint.ln.items import LN_KIND, LightningClientConfig
from fedimint_gw.fedimint.lnv2.config import LNV2_KIND, Lnv2ClientConfig, Lnv2Fee
from fedimint_gw.fedimint.mint_types import MINT_KIND, FeeConsensus, MintClientConfig

DEFAULT_TIERS: tuple[int, ...] = tuple(2**i for i in range(41))
"""Power-of-two note tiers in msat, 1 msat .. 2^40 msat (as upstream's default)."""
MINT_INSTANCE_ID = 1
"""The mint's module instance id, as fedimintd numbers its default modules (ln 0, mint 1, wallet 2);
the v0.7-era WASM client takes instance 1 as its primary module and panics without it."""
MINT_CONSENSUS_VERSION = ConsensusVersion(2, 0)
LN_CONSENSUS_VERSION = ConsensusVersion(2, 0)
"""The v0.7-era official client accepted `ln` 2.0 (docs/official-client.md)."""
LN_PK_SET_KEY = "ln_pk_set"
MAX_NOTES_PER_DENOMINATION = 3
LNV2_INSTANCE_ID = 3
"""LNv2's instance: after ln 0, mint 1 and wallet 2 (fedimintd's numbering of its defaults)."""
LNV2_CONSENSUS_VERSION = ConsensusVersion(1, 0)
DEFAULT_CORE_CONSENSUS = ConsensusVersion(2, 1)


@dataclass(frozen=True)
class FedimintParams:
    """What ``devfed run --api fedimint`` is told on first start (restarts reuse the stored config)."""

    name: str = "devfed-fedimint"
    guardians: int = 4
    fee_base_msat: int = 0
    fee_ppm: int = 0
    core_consensus: ConsensusVersion = DEFAULT_CORE_CONSENSUS
    """2.1: a transaction may overpay its fees (the official v0.7-era client leaves change dust
    to the federation when fees are not zero); 2.0 demands inputs == outputs + fees exactly."""
    tiers: tuple[int, ...] = DEFAULT_TIERS
    faucet_limit_msat: int = 100_000_000
    lnv2: bool = False
    """Also serve the LNv2 module (kind ``lnv2``) at instance :data:`LNV2_INSTANCE_ID`."""
    lnv2_fee_base_msat: int = 0
    lnv2_fee_ppm: int = 0
    ln: bool = False
    """Also serve the LNv1 module (`ln`) at instance 0, as fedimintd's default layout."""
    ln_start_block_count: int = 100
    """The `ln` module's consensus block count at first start (moved by the admin endpoint)."""

    def __post_init__(self) -> None:
        if not 1 <= self.guardians <= 64:
            raise ValueError("a devfed Fedimint federation has 1 to 64 guardians")
        if self.fee_base_msat < 0 or not 0 <= self.fee_ppm <= 1_000:
            raise ValueError("fees: base >= 0 msat, 0 <= ppm <= 1000 (upstream's bound)")
        if not self.tiers or any(t <= 0 or t & (t - 1) for t in self.tiers):
            raise ValueError("note tiers are powers of two")

    @property
    def threshold(self) -> int:
        """Fedimint's threshold for this many guardians: n - floor((n - 1) / 3)."""
        return threshold(self.guardians)


def deal_and_store(store: FedimintStore, params: FedimintParams) -> MintClientConfig:
    """Deal every tier's key shares, store each guardian's own shares, return the public part."""
    aggregate: dict[int, bytes] = {}
    peer_pks: dict[int, dict[int, bytes]] = {p: {} for p in range(params.guardians)}
    for tier in params.tiers:
        keys = tbs.dealer_keys(dealer.random_coefficients(params.threshold), params.guardians)
        aggregate[tier] = keys.aggregate_public_key.encode()
        for peer in range(params.guardians):
            store.save_key_share(peer, tier, keys.secret_key_shares[peer].encode())
            peer_pks[peer][tier] = keys.public_key_shares[peer].encode()
    fee = FeeConsensus(params.fee_base_msat, params.fee_ppm)
    return MintClientConfig(aggregate, fee, peer_pks, MAX_NOTES_PER_DENOMINATION)


def deal_lnv2(store: FedimintStore, params: FedimintParams) -> Lnv2ClientConfig:
    """Deal the LNv2 tpe keys; each guardian's secret share is stored under its own key."""
    keys = tpe.dealer_keys(dealer.random_coefficients(params.threshold), params.guardians)
    for peer in range(params.guardians):
        store.set_meta(f"lnv2_sk_{peer}", keys.secret_key_shares[peer].encode().hex())
    fee = Lnv2Fee(params.lnv2_fee_base_msat, params.lnv2_fee_ppm)
    return Lnv2ClientConfig(keys.aggregate_public_key, dict(enumerate(keys.public_key_shares)), fee)


def lnv2_secret(store: FedimintStore, peer: int) -> tpe.SecretKeyShare:
    """Guardian ``peer``'s own tpe secret share."""
    raw = store.get_meta(f"lnv2_sk_{peer}")
    if raw is None:
        raise KeyError(f"no LNv2 key share for guardian {peer}")
    return tpe.SecretKeyShare.decode(bytes.fromhex(raw))


def deal_ln_and_store(store: FedimintStore, params: FedimintParams) -> LightningClientConfig:
    """Deal the `ln` module's threshold_crypto key (degree threshold - 1: a threshold of guardians
    decrypts), store each guardian's own share and the public key set."""
    secret = tc.SecretKeySet.random(params.threshold - 1, ChaChaRng.from_os_entropy())
    ln_store = LnStore(store)
    for peer in range(params.guardians):
        ln_store.save_key_share(peer, secret.secret_key_share(peer).encode())
    pk_set = secret.public_keys()
    store.set_meta(LN_PK_SET_KEY, pk_set.encode().hex())
    ln_store.set_block_count(params.ln_start_block_count)
    return LightningClientConfig(pk_set.public_key().encode(), 0, 0)


def client_config(
    params: FedimintParams,
    urls: Sequence[str],
    mint: MintClientConfig,
    lnv2: Lnv2ClientConfig | None = None,
    ln: LightningClientConfig | None = None,
) -> ClientConfig:
    """The config every guardian serves on ``client_config``."""
    endpoints = {peer: PeerUrl(url, f"devfed-guardian-{peer}") for peer, url in enumerate(urls)}
    modules = {
        MINT_INSTANCE_ID: ModuleConfig(MINT_INSTANCE_ID, MINT_KIND, MINT_CONSENSUS_VERSION, mint.to_bytes())
    }
    if lnv2 is not None:
        modules[LNV2_INSTANCE_ID] = ModuleConfig(
            LNV2_INSTANCE_ID, LNV2_KIND, LNV2_CONSENSUS_VERSION, lnv2.to_bytes()
        )
    if ln is not None:
        modules[LN_INSTANCE_ID] = ModuleConfig(LN_INSTANCE_ID, LN_KIND, LN_CONSENSUS_VERSION, ln.to_bytes())
    return ClientConfig(
        api_endpoints=endpoints,
        consensus_version=params.core_consensus,
        meta={"federation_name": params.name},
        modules=dict(sorted(modules.items())),
    )
