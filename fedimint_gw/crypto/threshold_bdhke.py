"""Threshold BDHKE: a federation signs blinded messages with a Shamir-shared mint key.

Guardian ``i`` holds ``k_i`` and publishes ``K_i = k_i*G``. For a blinded message ``B_`` it
returns ``C_i = k_i*B_`` with a NUT-12 DLEQ proof against ``K_i``. The wallet verifies each
share and interpolates any ``threshold`` of them to ``C_ = k*B_``, which it unblinds with the
federation key ``K`` exactly as in single-mint BDHKE (:func:`fedimint_gw.crypto.bdhke.unblind`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fedimint_gw.crypto import dleq
from fedimint_gw.crypto._codec import get_field, get_index, get_point, require_mapping
from fedimint_gw.crypto.bdhke import sign
from fedimint_gw.crypto.errors import InvalidShareError
from fedimint_gw.crypto.point import Point
from fedimint_gw.crypto.shamir import PointShare, Share, combine_points, require_index, require_threshold


@dataclass(frozen=True)
class BlindSignatureShare:
    """Guardian ``index``'s share ``C_i = k_i*B_`` of a blind signature, with its DLEQ proof.

    JSON form: ``{"index": 1, "C_": "<66 hex>", "dleq": {"e": ..., "s": ...}}``.
    """

    index: int
    signature: Point
    proof: dleq.Dleq

    def __post_init__(self) -> None:
        require_index(self.index)

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-ready form."""
        return {"index": self.index, "C_": self.signature.to_hex(), "dleq": self.proof.to_dict()}

    @classmethod
    def from_dict(cls, data: object) -> BlindSignatureShare:
        """Parse the form produced by :meth:`to_dict`; raise ``CryptoError`` if malformed."""
        what = "blind signature share"
        fields = require_mapping(data, what)
        return cls(
            index=get_index(fields, "index", what),
            signature=get_point(fields, "C_", what),
            proof=dleq.Dleq.from_dict(get_field(fields, "dleq", what)),
        )


def sign_share(key_share: Share, blinded: Point) -> BlindSignatureShare:
    """Guardian side: sign ``blinded`` with a key share and prove it against ``K_i``."""
    return BlindSignatureShare(
        index=key_share.index,
        signature=sign(key_share.value, blinded),
        proof=dleq.prove(key_share.value, blinded),
    )


def verify_share(public_key_share: Point, blinded: Point, share: BlindSignatureShare) -> bool:
    """Return whether ``share`` is ``k_i*blinded`` for the ``k_i`` behind ``public_key_share``."""
    return dleq.verify(share.proof, public_key_share, blinded, share.signature)


def combine_shares(
    blinded: Point,
    shares: Sequence[BlindSignatureShare],
    public_key_shares: Mapping[int, Point],
    threshold: int,
) -> Point:
    """Verify every given share and interpolate ``threshold`` of them into ``C_ = k*blinded``.

    Raises :class:`InvalidShareError` (with ``.index``) for the first share whose index is
    unknown, repeated or whose proof fails, and ``CryptoError`` if fewer than ``threshold``
    shares are given. Callers that want to skip bad guardians instead should filter with
    :func:`verify_share` first.
    """
    for share in shares:
        public_key_share = public_key_shares.get(share.index)
        if public_key_share is None:
            raise InvalidShareError(share.index, "no public key share for this index")
        if not verify_share(public_key_share, blinded, share):
            raise InvalidShareError(share.index, "DLEQ proof does not verify")
    require_threshold([share.index for share in shares], threshold)
    chosen = sorted(shares, key=lambda share: share.index)[:threshold]
    return combine_points([PointShare(index=share.index, point=share.signature) for share in chosen])
