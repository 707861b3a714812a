"""LNv2 module queries over a :class:`FederationApi`, each decided the way DESIGN.md §3 asks:

- facts that move money (an outgoing contract's id and expiry, the consensus block count, the
  vetted gateways, an incoming contract's out point) on a threshold of identical answers;
- self-verifying facts from any single guardian: a preimage is taken once it matches the
  contract's payment image; decryption key shares are checked one by one against the
  guardian's public key share (``e(dks, H) == e(pk_i, signature)``), a threshold of valid ones
  is aggregated and the aggregate checked again before it decrypts anything.
"""

from __future__ import annotations

import asyncio

from fedimint_gw.crypto.bls import tpe
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.fedimint import json_fields as jf
from fedimint_gw.fedimint.encoding import U64_MAX
from fedimint_gw.fedimint.errors import DecodeError, FedimintProtocolError, ThresholdNotReached
from fedimint_gw.fedimint.lnv2.config import Lnv2ClientConfig
from fedimint_gw.fedimint.lnv2.contracts import IncomingContract, PaymentImage
from fedimint_gw.fedimint.lnv2.gateway_api import parse_outpoint
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import OutPoint
from fedimint_gw.fedimint.transport import module_method


async def consensus_block_count(api: FederationApi, instance: int, *, timeout: float | None = None) -> int:
    result = await api.module_threshold_request(instance, "consensus_block_count", timeout=timeout)
    return jf.integer(result, "consensus_block_count", U64_MAX)


async def gateways(api: FederationApi, instance: int, *, timeout: float | None = None) -> list[str]:
    result = await api.module_threshold_request(instance, "gateways", timeout=timeout)
    if not isinstance(result, list):
        raise DecodeError("gateways must be a list of URLs")
    return [jf.text(u, "gateway url") for u in result]


async def outgoing_contract_expiration(
    api: FederationApi, instance: int, outpoint: OutPoint, *, timeout: float | None = None
) -> tuple[bytes, int] | None:
    """(contract id, blocks left) of the unspent outgoing contract at ``outpoint``, or None."""
    result = await api.module_threshold_request(
        instance, "outgoing_contract_expiration", outpoint.to_json(), timeout=timeout
    )
    if result is None:
        return None
    if not isinstance(result, list) or len(result) != 2:
        raise DecodeError("outgoing_contract_expiration answers [contract id, blocks] or null")
    return jf.hex_bytes(result[0], "contract id", 32), jf.integer(result[1], "blocks left", U64_MAX)


async def await_incoming_contract(
    api: FederationApi, instance: int, contract_id: bytes, expiration: int, *, timeout: float | None = None
) -> OutPoint | None:
    """The out point funding the incoming contract, or None once it can no longer be funded."""
    result = await api.module_threshold_request(
        instance, "await_incoming_contract", [contract_id.hex(), expiration], timeout=timeout
    )
    return None if result is None else parse_outpoint(result)


async def await_preimage(
    api: FederationApi,
    instance: int,
    outpoint: OutPoint,
    expiration: int,
    image: PaymentImage,
    *,
    timeout: float | None = None,
) -> bytes | None:
    """The claimed preimage (checked against ``image``; one guardian suffices), or None when a
    threshold says the contract expired unclaimed."""
    params = [outpoint.to_json(), expiration]
    answers = await api.each(module_method(instance, "await_preimage"), params, timeout=timeout)
    nulls = 0
    for answer in answers.values():
        if answer.error is not None:
            continue
        if answer.result is None:
            nulls += 1
            continue
        raw = answer.result
        if isinstance(raw, list) and len(raw) == 32 and all(type(b) is int and 0 <= b <= 255 for b in raw):
            preimage = bytes(raw)
            if image.matches(preimage):
                return preimage
    if nulls >= api.threshold:
        return None
    raise ThresholdNotReached("await_preimage: no valid preimage and no threshold saying it expired")


async def _dk_share(
    api: FederationApi, instance: int, peer: int, outpoint: OutPoint, timeout: float | None
) -> tpe.DecryptionKeyShare | None:
    try:
        result = await api.request_peer(
            peer, module_method(instance, "decryption_key_share"), outpoint.to_json(), timeout=timeout
        )
        return tpe.DecryptionKeyShare.decode(jf.hex_bytes(result, "decryption key share", 48))
    except (FedimintProtocolError, CryptoError):
        return None


async def aggregate_decryption_key(
    api: FederationApi,
    instance: int,
    config: Lnv2ClientConfig,
    contract: IncomingContract,
    outpoint: OutPoint,
    *,
    timeout: float | None = None,
) -> tpe.AggregateDecryptionKey:
    """Ask every guardian for its share, keep those that verify, aggregate a threshold.

    Raises :class:`ThresholdNotReached` with fewer than a threshold of valid shares (ask again
    later) and :class:`DecodeError` for a contract whose ciphertext itself is invalid.
    """
    if not contract.verify():
        raise DecodeError("the incoming contract's ciphertext does not verify")
    peers = sorted(api.peers)
    shares = await asyncio.gather(*(_dk_share(api, instance, p, outpoint, timeout) for p in peers))
    valid: dict[int, tpe.DecryptionKeyShare] = {}
    for peer, share in zip(peers, shares, strict=True):
        pk = config.tpe_pks.get(peer)
        if share is not None and pk is not None and contract.verify_dk_share(pk, share):
            valid[peer] = share
    if len(valid) < api.threshold:
        bad = [p for p in peers if p not in valid]
        raise ThresholdNotReached(
            f"decryption_key_share: {len(valid)} valid shares, {api.threshold} needed (none from {bad})"
        )
    chosen = dict(sorted(valid.items())[: api.threshold])
    agg = tpe.aggregate_dk_shares(chosen)
    if not contract.verify_agg_dk(config.tpe_agg_pk, agg):
        raise ThresholdNotReached("the aggregated decryption key does not verify")
    return agg
