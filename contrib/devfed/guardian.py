"""One guardian: its own key shares, the answers it computes with them, and its fault mode.

A guardian never sees another guardian's shares. A byzantine guardian returns shares that
are well-formed but wrong (its point is shifted by ``G``), so only proof checks catch them.
The other faults (lying, withholding preimages, dropping submission answers) are applied to
a guardian's answers in :mod:`contrib.devfed.faults`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from contrib.devfed.config import GuardianSecrets
from fedimint_gw.crypto import dleq
from fedimint_gw.crypto.point import Point, generator, multiply
from fedimint_gw.crypto.threshold_bdhke import BlindSignatureShare, sign_share
from fedimint_gw.crypto.threshold_elgamal import Ciphertext, DecryptionShare, create_share


class FaultMode(Enum):
    """Injected behaviour of a guardian."""

    HONEST = "honest"
    OFFLINE = "offline"
    SLOW = "slow"
    BYZANTINE = "byzantine"
    LYING = "lying"  # answers the contract views, height and submission refusals it is told to
    WITHHOLDING = "withholding"  # never reveals a preimage (views nor decryption shares)
    DROPPING = "dropping"  # processes a submission, then drops its answer
    UNSIGNING = "unsigning"  # gives no signature shares (notes are not finished) until lifted


@dataclass(frozen=True)
class Fault:
    """A guardian's current fault: the mode and its parameters.

    - ``slow``: ``delay_ms`` before every answer;
    - ``lying``: ``contracts`` (contract id -> the view it claims), ``height_offset`` added to
      the block height it reports, ``refuse_submissions`` (it processes a submission, then
      answers a ``double_spend`` refusal);
    - ``dropping``: ``defer`` keeps the submissions it got (unknown to every guardian) until
      the fault is lifted, as a transaction still in consensus would be; ``discard`` loses them
      (as if they never arrived); else they are applied at once. The submitter gets no answer.
    """

    mode: FaultMode = FaultMode.HONEST
    delay_ms: int = 0
    contracts: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    height_offset: int = 0
    refuse_submissions: bool = False
    defer: bool = False
    discard: bool = False

    def to_dict(self) -> dict[str, object]:
        """JSON form for the admin API."""
        return {
            "mode": self.mode.value,
            "delay_ms": self.delay_ms,
            "contracts": sorted(self.contracts),
            "height_offset": self.height_offset,
            "refuse_submissions": self.refuse_submissions,
            "defer": self.defer,
            "discard": self.discard,
        }


@dataclass(frozen=True)
class Evaluation:
    """``k_i * Y`` for a note being spent, with a NUT-12 DLEQ proof against ``K_i``."""

    index: int
    point: Point
    proof: dleq.Dleq


class Guardian:
    """A guardian holding only its own shares."""

    def __init__(self, secrets: GuardianSecrets, ln_pubkey: Point) -> None:
        self._secrets = secrets
        self._ln_pubkey = ln_pubkey
        self.fault = Fault()
        self.deferred: list[object] = []  # submissions a deferring guardian holds back

    @property
    def peer_id(self) -> int:
        """This guardian's peer id."""
        return self._secrets.peer_id

    @property
    def online(self) -> bool:
        """False when fault-injected offline (it then takes no part in consensus either)."""
        return self.fault.mode is not FaultMode.OFFLINE

    @property
    def byzantine(self) -> bool:
        """True when it answers invalid shares."""
        return self.fault.mode is FaultMode.BYZANTINE

    def _corrupt(self, point: Point) -> Point:
        return point + generator() if self.byzantine else point

    def sign_blinded(self, denomination: int, blinded: Point) -> BlindSignatureShare:
        """``C_i = k_i * B_`` with its DLEQ proof (shifted if byzantine)."""
        share = sign_share(self._secrets.mint_shares[denomination], blinded)
        return BlindSignatureShare(share.index, self._corrupt(share.signature), share.proof)

    def evaluate_note(self, denomination: int, y: Point) -> Evaluation:
        """``k_i * Y`` with a proof, used by the sequencer to check a spent note in consensus."""
        key = self._secrets.mint_shares[denomination]
        return Evaluation(key.index, self._corrupt(multiply(y, key.value)), dleq.prove(key.value, y))

    def decryption_share(self, ciphertext: Ciphertext, context: bytes) -> DecryptionShare:
        """``D_i = sk_i * R`` with its proof (raises ``CryptoError`` on an ill-formed ciphertext)."""
        share = create_share(self._secrets.ln_share, self._ln_pubkey, ciphertext, context)
        return DecryptionShare(share.index, self._corrupt(share.point), share.proof)
