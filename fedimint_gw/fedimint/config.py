"""The client config a guardian serves (`client_config`), and the federation id it implies.

JSON layout (`fedimint-core/src/config.rs`, `ClientConfig` with `GlobalClientConfig` flattened):
    {"api_endpoints": {"0": {"url", "name"}, ...},
     "broadcast_public_keys": {"0": "02..."} | null | absent   (optional, >= 0.4),
     "consensus_version": {"major", "minor"},
     "meta": {"federation_name": "...", ...},
     "modules": {"<id>": {"kind", "version": {"major", "minor"}, "config": "<hex>"}}}
Unknown top-level keys are ignored, as serde does. Module `config` is the hex of
`varint(instance id) + varint(len) + <module client config>` (`DynRawFallback`).

Federation id (>= 0.4) = sha256(consensus encoding of `api_endpoints` as
`BTreeMap<PeerId, PeerUrl { url: String, name: String }>`); URLs are hashed as `SafeUrl`
prints them (see `urls.py`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.fedimint import json_fields as jf
from fedimint_gw.fedimint.encoding import U16_MAX, U32_MAX, Reader, Writer, decode_hex, encode
from fedimint_gw.fedimint.errors import ConfigMismatch, DecodeError
from fedimint_gw.fedimint.urls import normalize_url

MAX_PEERS = 1024


def threshold(num_peers: int) -> int:
    """Guardians needed for a decision: n - floor((n - 1) / 3) (upstream `NumPeers::threshold`)."""
    if num_peers < 1:
        raise ValueError("a federation has at least one guardian")
    return num_peers - (num_peers - 1) // 3


@dataclass(frozen=True)
class PeerUrl:
    """A guardian's API URL (normalized like `SafeUrl`) and its name."""

    url: str
    name: str

    def write(self, w: Writer) -> None:
        w.string(self.url).string(self.name)

    @classmethod
    def read(cls, r: Reader) -> PeerUrl:
        return cls(normalize_url(r.string()), r.string())


@dataclass(frozen=True, order=True)
class ConsensusVersion:
    """`CoreConsensusVersion` / `ModuleConsensusVersion`: {major, minor}, each a u32."""

    major: int
    minor: int

    def write(self, w: Writer) -> None:
        w.u32(self.major).u32(self.minor)

    @classmethod
    def from_json(cls, value: object, what: str) -> ConsensusVersion:
        data = jf.obj(value, what)
        return cls(
            jf.integer(jf.field(data, "major", what), f"{what}.major", U32_MAX),
            jf.integer(jf.field(data, "minor", what), f"{what}.minor", U32_MAX),
        )

    def to_json(self) -> dict[str, int]:
        return {"major": self.major, "minor": self.minor}


@dataclass(frozen=True)
class ModuleConfig:
    """One module's client config: its kind, consensus version and the module's own bytes."""

    instance_id: int
    kind: str
    version: ConsensusVersion
    raw: bytes
    """The module client config's consensus encoding (without instance id and length)."""

    @property
    def config_hex(self) -> str:
        """The `config` field as served: hex of instance id + length + raw."""
        return encode(lambda w: w.dyn(self.instance_id, self.raw)).hex()

    def write(self, w: Writer) -> None:
        w.string(self.kind)
        self.version.write(w)
        w.dyn(self.instance_id, self.raw)

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "version": self.version.to_json(), "config": self.config_hex}


@dataclass(frozen=True)
class ClientConfig:
    """A parsed client config. Mappings are sorted by key; treat them as read-only."""

    api_endpoints: Mapping[int, PeerUrl]
    consensus_version: ConsensusVersion
    meta: Mapping[str, str] = field(default_factory=dict)
    modules: Mapping[int, ModuleConfig] = field(default_factory=dict)
    broadcast_public_keys: Mapping[int, bytes] | None = None

    def __post_init__(self) -> None:
        if not self.api_endpoints:
            raise DecodeError("a client config lists at least one guardian")

    @property
    def num_peers(self) -> int:
        return len(self.api_endpoints)

    @property
    def threshold(self) -> int:
        return threshold(self.num_peers)

    @property
    def federation_name(self) -> str | None:
        return self.meta.get("federation_name")

    def federation_id(self) -> FederationId:
        return federation_id_of(self.api_endpoints)

    def check_federation_id(self, expected: FederationId) -> None:
        """Refuse a config that is not the federation the invite code named."""
        actual = self.federation_id()
        if actual != expected:
            raise ConfigMismatch(f"config hashes to federation {actual}, expected {expected}")

    def module_by_kind(self, kind: str) -> ModuleConfig | None:
        """The first module of `kind` (lowest instance id), if any."""
        return next((m for _, m in sorted(self.modules.items()) if m.kind == kind), None)

    def consensus_hash(self) -> bytes:
        """sha256 of the config's consensus encoding (upstream `ClientConfig::consensus_hash`)."""
        return hashlib.sha256(encode(self._write)).digest()

    def _write(self, w: Writer) -> None:
        w.btree_map(self.api_endpoints, Writer.u16, lambda ww, p: p.write(ww))
        w.option(
            self.broadcast_public_keys,
            lambda ww, keys: ww.btree_map(keys, Writer.u16, lambda w3, k: w3.fixed(k, 33)),
        )
        self.consensus_version.write(w)
        w.btree_map(self.meta, Writer.string, Writer.string)
        w.btree_map(self.modules, Writer.u16, lambda ww, m: m.write(ww))

    def to_json(self) -> dict[str, object]:
        """The JSON a guardian's `client_config` endpoint answers."""
        keys = self.broadcast_public_keys
        return {
            "api_endpoints": {str(k): {"url": p.url, "name": p.name} for k, p in self.api_endpoints.items()},
            "broadcast_public_keys": None if keys is None else {str(k): v.hex() for k, v in keys.items()},
            "consensus_version": self.consensus_version.to_json(),
            "meta": dict(self.meta),
            "modules": {str(k): m.to_json() for k, m in self.modules.items()},
        }


def federation_id_of(api_endpoints: Mapping[int, PeerUrl]) -> FederationId:
    """sha256 of the consensus encoding of `BTreeMap<PeerId, PeerUrl>`."""
    data = encode(lambda w: w.btree_map(api_endpoints, Writer.u16, lambda ww, p: p.write(ww)))
    return FederationId(hashlib.sha256(data).hexdigest())


def _peer_url(value: object, what: str) -> PeerUrl:
    data = jf.obj(value, what)
    url = normalize_url(jf.text(jf.field(data, "url", what), f"{what}.url"))
    return PeerUrl(url, jf.text(jf.field(data, "name", what), f"{what}.name"))


def _module(instance_id: int, value: object, what: str) -> ModuleConfig:
    data = jf.obj(value, what)
    kind = jf.text(jf.field(data, "kind", what), f"{what}.kind")
    version = ConsensusVersion.from_json(jf.field(data, "version", what), f"{what}.version")
    hexed = jf.text(jf.field(data, "config", what), f"{what}.config")

    def parse(r: Reader) -> tuple[int, bytes]:
        inner_id, body = r.dyn()
        return inner_id, body.read(body.remaining)

    inner_id, raw = decode_hex(hexed, parse)
    if inner_id != instance_id:
        raise DecodeError(f"{what}.config names module instance {inner_id}")
    return ModuleConfig(instance_id, kind, version, raw)


def parse_client_config(value: object) -> ClientConfig:
    """Parse a `client_config` answer; DecodeError naming the first bad field."""
    what = "client config"
    data = jf.obj(value, what)
    endpoints = jf.int_keyed(jf.field(data, "api_endpoints", what), "api_endpoints", U16_MAX, _peer_url)
    if len(endpoints) > MAX_PEERS:
        raise DecodeError("too many guardians in the client config")
    raw_keys = data.get("broadcast_public_keys")
    keys = None
    if raw_keys is not None:
        keys = jf.int_keyed(raw_keys, "broadcast_public_keys", U16_MAX, lambda v, w: jf.hex_bytes(v, w, 33))
    version = ConsensusVersion.from_json(jf.field(data, "consensus_version", what), "consensus_version")
    meta_raw = jf.obj(data.get("meta", {}), "meta")
    meta = {k: jf.text(v, f"meta[{k}]") for k, v in sorted(meta_raw.items())}
    modules_raw = jf.obj(jf.field(data, "modules", what), "modules")
    modules: dict[int, ModuleConfig] = {}
    for key, raw in modules_raw.items():
        instance_id = jf.int_key(key, "modules", U16_MAX)
        if instance_id in modules:
            raise DecodeError(f"modules has key {instance_id} twice")
        modules[instance_id] = _module(instance_id, raw, f"modules[{instance_id}]")
    return ClientConfig(endpoints, version, meta, dict(sorted(modules.items())), keys)
