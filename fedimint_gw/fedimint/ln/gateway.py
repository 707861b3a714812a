"""LNv1 gateway announcements (`LightningGatewayAnnouncement`), in the JSON the guardians serve.

    {"info": {"mint_channel_id": u64, "gateway_redeem_key": hex33, "node_pub_key": hex33,
              "lightning_alias": str, "api": url, "route_hints": [...],
              "fees": {"base_msat": u32, "proportional_millionths": u32},
              "gateway_id": hex33, "supports_private_payments": bool},
     "vetted": bool, "ttl": {"secs": u64, "nanos": u32}}
This is the shape the official v0.7-era client accepted from `list_gateways`
(docs/official-client.md); `register_gateway` takes the same object. `mint_channel_id` is the
short channel id the client puts in its invoices' route hint (upstream names it
`federation_index` in later releases). Route hints are kept as given (a bounded JSON list).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedimint_gw.fedimint import json_fields as jf
from fedimint_gw.fedimint.encoding import U32_MAX, U64_MAX
from fedimint_gw.fedimint.errors import DecodeError

PUBKEY_LEN = 33
MAX_ALIAS = 64
MAX_URL = 2048
MAX_ROUTE_HINTS = 16


@dataclass(frozen=True)
class LightningGateway:
    """What a gateway tells the federation's clients about itself."""

    mint_channel_id: int
    gateway_redeem_key: bytes
    node_pub_key: bytes
    lightning_alias: str
    api: str
    fee_base_msat: int
    fee_ppm: int
    gateway_id: bytes
    route_hints: Sequence[object] = ()
    supports_private_payments: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "mint_channel_id": self.mint_channel_id,
            "gateway_redeem_key": self.gateway_redeem_key.hex(),
            "node_pub_key": self.node_pub_key.hex(),
            "lightning_alias": self.lightning_alias,
            "api": self.api,
            "route_hints": list(self.route_hints),
            "fees": {"base_msat": self.fee_base_msat, "proportional_millionths": self.fee_ppm},
            "gateway_id": self.gateway_id.hex(),
            "supports_private_payments": self.supports_private_payments,
        }

    @classmethod
    def from_json(cls, value: object) -> LightningGateway:
        """Parse strictly (DecodeError on anything out of shape)."""
        data = jf.obj(value, "gateway info")
        fees = jf.obj(jf.field(data, "fees", "gateway info"), "gateway fees")
        alias = jf.text(jf.field(data, "lightning_alias", "gateway info"), "lightning_alias")
        api = jf.text(jf.field(data, "api", "gateway info"), "api")
        if len(alias) > MAX_ALIAS or len(api) > MAX_URL or not api.startswith(("http://", "https://")):
            raise DecodeError("gateway alias or api URL out of bounds")
        hints = jf.field(data, "route_hints", "gateway info")
        if not isinstance(hints, list) or len(hints) > MAX_ROUTE_HINTS:
            raise DecodeError(f"route_hints must be a list of at most {MAX_ROUTE_HINTS}")
        private = data.get("supports_private_payments", False)
        if not isinstance(private, bool):
            raise DecodeError("supports_private_payments must be a boolean")
        return cls(
            mint_channel_id=jf.integer(
                jf.field(data, "mint_channel_id", "gateway info"), "mint_channel_id", U64_MAX
            ),
            gateway_redeem_key=_key(data, "gateway_redeem_key"),
            node_pub_key=_key(data, "node_pub_key"),
            lightning_alias=alias,
            api=api,
            fee_base_msat=jf.integer(jf.field(fees, "base_msat", "fees"), "fees.base_msat", U32_MAX),
            fee_ppm=jf.integer(jf.field(fees, "proportional_millionths", "fees"), "fees.ppm", U32_MAX),
            gateway_id=_key(data, "gateway_id"),
            route_hints=tuple(hints),
            supports_private_payments=private,
        )


def _key(data: object, name: str) -> bytes:
    raw = jf.hex_bytes(jf.field(jf.obj(data, "gateway info"), name, "gateway info"), name, PUBKEY_LEN)
    if raw[0] not in (2, 3):
        raise DecodeError(f"{name} is not a compressed public key")
    return raw


@dataclass(frozen=True)
class GatewayAnnouncement:
    """A registration as clients see it: valid for `ttl_secs` more seconds."""

    info: LightningGateway
    vetted: bool
    ttl_secs: int

    def to_json(self) -> dict[str, object]:
        return {
            "info": self.info.to_json(),
            "vetted": self.vetted,
            "ttl": {"secs": self.ttl_secs, "nanos": 0},
        }

    @classmethod
    def from_json(cls, value: object) -> GatewayAnnouncement:
        data = jf.obj(value, "gateway announcement")
        vetted = data.get("vetted", False)
        if not isinstance(vetted, bool):
            raise DecodeError("vetted must be a boolean")
        ttl = jf.obj(jf.field(data, "ttl", "gateway announcement"), "ttl")
        secs = jf.integer(jf.field(ttl, "secs", "ttl"), "ttl.secs", U64_MAX)
        jf.integer(ttl.get("nanos", 0), "ttl.nanos", 999_999_999)
        return cls(LightningGateway.from_json(jf.field(data, "info", "gateway announcement")), vetted, secs)
