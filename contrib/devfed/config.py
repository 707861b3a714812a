"""Federation keys (dealer-generated Shamir shares) and the public configuration.

Guardian ``peer_id`` ``p`` (0-based) holds the Shamir shares with index ``p + 1``.
The federation id is ``sha256(canonical_json(public_config))``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from contrib.devfed.codec import as_list, as_object, bad, get_int, get_str, object_id
from fedimint_gw.crypto.point import Point
from fedimint_gw.crypto.scalar import random_scalar
from fedimint_gw.crypto.shamir import Share, split

DENOMINATIONS: tuple[int, ...] = tuple(2**i for i in range(41))
"""Power-of-two note denominations in msat: 2^0 .. 2^40."""


@dataclass(frozen=True)
class GuardianSecrets:
    """One guardian's secret key shares: one per denomination, and one of the Lightning key."""

    peer_id: int
    mint_shares: Mapping[int, Share]
    ln_share: Share

    def to_dict(self) -> dict[str, object]:
        """JSON form kept in the guardian's own table."""
        return {
            "peer_id": self.peer_id,
            "mint_shares": {str(d): s.to_dict() for d, s in self.mint_shares.items()},
            "ln_share": self.ln_share.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: object) -> GuardianSecrets:
        """Parse :meth:`to_dict` output."""
        fields = as_object(data, "secrets")
        shares = as_object(fields.get("mint_shares"), "secrets.mint_shares")
        return cls(
            peer_id=get_int(fields, "peer_id", "secrets"),
            mint_shares={int(d): Share.from_dict(s) for d, s in shares.items()},
            ln_share=Share.from_dict(fields.get("ln_share")),
        )


@dataclass(frozen=True)
class GuardianInfo:
    """A guardian's public entry in the config."""

    peer_id: int
    url: str
    mint_pubkey_shares: Mapping[int, Point]
    ln_pubkey_share: Point

    @property
    def share_index(self) -> int:
        """Shamir index of this guardian's shares (``peer_id + 1``)."""
        return self.peer_id + 1


@dataclass(frozen=True)
class ApiMajor:
    """An API major version served, with its maximum minor."""

    major: int
    max_minor: int


@dataclass(frozen=True)
class PublicConfig:
    """The federation's public configuration (what ``GET /v1/config`` returns)."""

    name: str
    threshold: int
    guardians: tuple[GuardianInfo, ...]
    denominations: tuple[int, ...]
    mint_pubkeys: Mapping[int, Point]
    ln_pubkey: Point
    tx_fee_msat: int
    api: tuple[ApiMajor, ...]

    def to_dict(self) -> dict[str, object]:
        """The JSON form whose canonical hash is the federation id."""
        return {
            "name": self.name,
            "threshold": self.threshold,
            "guardians": [
                {
                    "peer_id": g.peer_id,
                    "url": g.url,
                    "mint_pubkey_shares": {str(d): p.to_hex() for d, p in g.mint_pubkey_shares.items()},
                    "ln_pubkey_share": g.ln_pubkey_share.to_hex(),
                }
                for g in self.guardians
            ],
            "mint": {
                "denominations": list(self.denominations),
                "pubkeys": {str(d): p.to_hex() for d, p in self.mint_pubkeys.items()},
            },
            "ln": {"pubkey": self.ln_pubkey.to_hex()},
            "tx_fee_msat": self.tx_fee_msat,
            "api": {"majors": [{"major": a.major, "max_minor": a.max_minor} for a in self.api]},
        }

    @property
    def federation_id(self) -> str:
        """sha256 of the canonical JSON of :meth:`to_dict`."""
        return object_id(self.to_dict())

    @property
    def majors(self) -> frozenset[int]:
        """The API majors this federation serves."""
        return frozenset(a.major for a in self.api)

    def mint_shares_for(self, denomination: int) -> dict[int, Point]:
        """``{share index: K_i}`` for one denomination."""
        return {g.share_index: g.mint_pubkey_shares[denomination] for g in self.guardians}

    def ln_shares(self) -> dict[int, Point]:
        """``{share index: PK_i}`` of the Lightning (decryption) key."""
        return {g.share_index: g.ln_pubkey_share for g in self.guardians}

    @classmethod
    def from_dict(cls, data: object) -> PublicConfig:
        """Parse a config JSON (raises ``invalid_request`` or ``CryptoError`` when malformed)."""
        fields = as_object(data, "config")
        mint = as_object(fields.get("mint"), "config.mint")
        denoms = tuple(int(str(d)) for d in as_list(mint.get("denominations"), "config.mint.denominations"))
        guardians = []
        for raw in as_list(fields.get("guardians"), "config.guardians"):
            g = as_object(raw, "guardian")
            shares = as_object(g.get("mint_pubkey_shares"), "guardian.mint_pubkey_shares")
            guardians.append(
                GuardianInfo(
                    peer_id=get_int(g, "peer_id", "guardian"),
                    url=get_str(g, "url", "guardian"),
                    mint_pubkey_shares={int(d): Point.from_hex(str(p)) for d, p in shares.items()},
                    ln_pubkey_share=Point.from_hex(get_str(g, "ln_pubkey_share", "guardian")),
                )
            )
        pubkeys = as_object(mint.get("pubkeys"), "config.mint.pubkeys")
        api = as_object(fields.get("api"), "config.api")
        majors = []
        for raw in as_list(api.get("majors"), "config.api.majors"):
            m = as_object(raw, "major")
            majors.append(ApiMajor(get_int(m, "major", "major"), get_int(m, "max_minor", "major")))
        return cls(
            name=get_str(fields, "name", "config"),
            threshold=get_int(fields, "threshold", "config", 1),
            guardians=tuple(guardians),
            denominations=denoms,
            mint_pubkeys={int(d): Point.from_hex(str(p)) for d, p in pubkeys.items()},
            ln_pubkey=Point.from_hex(
                get_str(as_object(fields.get("ln"), "config.ln"), "pubkey", "config.ln")
            ),
            tx_fee_msat=get_int(fields, "tx_fee_msat", "config"),
            api=tuple(majors),
        )


@dataclass(frozen=True)
class DealtKeys:
    """Output of the trusted dealer: every guardian's secrets and the public keys."""

    secrets: tuple[GuardianSecrets, ...]
    mint_pubkeys: Mapping[int, Point]
    ln_pubkey: Point


def deal_keys(n: int, threshold: int, denominations: Sequence[int] = DENOMINATIONS) -> DealtKeys:
    """Generate fresh keys and split them ``threshold``-of-``n`` (a trusted dealer at first start)."""
    if not 1 <= threshold <= n:
        raise bad(f"need 1 <= threshold <= guardians, got {threshold} of {n}")
    mint: dict[int, list[Share]] = {}
    pubkeys: dict[int, Point] = {}
    for denom in denominations:
        secret = random_scalar()
        mint[denom] = split(secret, n, threshold)
        pubkeys[denom] = Share(index=1, value=secret).public().point
    ln_secret = random_scalar()
    ln = split(ln_secret, n, threshold)
    secrets = tuple(
        GuardianSecrets(peer_id=p, mint_shares={d: mint[d][p] for d in denominations}, ln_share=ln[p])
        for p in range(n)
    )
    return DealtKeys(secrets, pubkeys, Share(index=1, value=ln_secret).public().point)


def build_config(
    name: str,
    threshold: int,
    keys: DealtKeys,
    urls: Sequence[str],
    tx_fee_msat: int,
    majors: Sequence[int],
) -> PublicConfig:
    """Assemble the public config from dealt keys and the guardians' URLs."""
    guardians = tuple(
        GuardianInfo(
            peer_id=s.peer_id,
            url=urls[s.peer_id],
            mint_pubkey_shares={d: share.public().point for d, share in s.mint_shares.items()},
            ln_pubkey_share=s.ln_share.public().point,
        )
        for s in keys.secrets
    )
    return PublicConfig(
        name=name,
        threshold=threshold,
        guardians=guardians,
        denominations=tuple(sorted(keys.mint_pubkeys)),
        mint_pubkeys=dict(keys.mint_pubkeys),
        ln_pubkey=keys.ln_pubkey,
        tx_fee_msat=tx_fee_msat,
        api=tuple(ApiMajor(m, 0) for m in sorted(set(majors))),
    )
