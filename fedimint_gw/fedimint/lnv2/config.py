"""The LNv2 module's client config (``fedimint-lnv2-common/src/config.rs``):

    LightningClientConfig { tpe_agg_pk: G1 (48), tpe_pks: BTreeMap<PeerId, G1 (48)>,
                            fee_consensus: FeeConsensus { base: Amount, parts_per_million: u64 },
                            network: NetworkLegacyEncodingWrapper }

The network is kept as its raw u32 varint here: our reading of the legacy wrapper is the
network magic as a little-endian u32 (regtest ``0xdab5bffa``); not checked against a fedimintd.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fedimint_gw.crypto.bls import tpe
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.fedimint.encoding import Reader, Writer, decode_whole, encode
from fedimint_gw.fedimint.errors import DecodeError

LNV2_KIND = "lnv2"
REGTEST_MAGIC = 0xDAB5BFFA
G1_LEN = 48


@dataclass(frozen=True)
class Lnv2Fee:
    """Fee of one LNv2 input or output: ``base + amount * ppm / 10^6`` msat."""

    base: int
    parts_per_million: int

    def fee(self, amount_msat: int) -> int:
        return self.base + amount_msat * self.parts_per_million // 1_000_000


@dataclass(frozen=True)
class Lnv2ClientConfig:
    tpe_agg_pk: tpe.AggregatePublicKey
    tpe_pks: Mapping[int, tpe.PublicKeyShare]
    fee: Lnv2Fee
    network: int = REGTEST_MAGIC

    def write(self, w: Writer) -> None:
        w.fixed(self.tpe_agg_pk.encode(), G1_LEN)
        w.btree_map(self.tpe_pks, Writer.u16, lambda ww, pk: ww.fixed(pk.encode(), G1_LEN))
        w.u64(self.fee.base).u64(self.fee.parts_per_million)
        w.u32(self.network)

    @classmethod
    def read(cls, r: Reader) -> Lnv2ClientConfig:
        try:
            agg = tpe.AggregatePublicKey.decode(r.fixed(G1_LEN))
            pks = r.btree_map(Reader.u16, lambda x: tpe.PublicKeyShare.decode(x.fixed(G1_LEN)))
        except CryptoError as exc:
            raise DecodeError(f"invalid LNv2 tpe key: {exc}") from None
        fee = Lnv2Fee(r.u64(), r.u64())
        return cls(agg, pks, fee, r.u32())

    def to_bytes(self) -> bytes:
        return encode(self.write)

    @classmethod
    def from_bytes(cls, data: bytes) -> Lnv2ClientConfig:
        return decode_whole(data, cls.read)
