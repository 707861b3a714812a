"""`FederationClient`: the one small, stable interface between the gateway and a federation.

The gateway core talks to every federation through this Protocol and nothing else. Behind
it sits one adapter per federation API major version (`devfed/v1.py`, `devfed/v2.py`, or a third-party
package registered under the `fedimint_gw.adapters` entry point group). Adapters are
chosen by negotiation (`registry.py`).

Contract of every method:
- **Idempotent**: calling again with the same arguments after a crash or a timeout returns
  the same outcome and never moves money twice (adapters key federation transactions by a
  deterministic id derived from the arguments).
- **Errors**: only `fedimint_gw.errors` types: `FederationUnreachable` (not enough guardians
  answered in time: safe to retry), `FederationRejected` (the federation refused: do not
  retry unchanged; a threshold of guardians refused: what was submitted was definitely not
  applied), `FederationMisbehaved` (a guardian's answer failed verification: the
  adapter already ignored it where a threshold of good answers remained),
  `InsufficientFunds`, `NotFound`, `InvalidInput`.
- **Amounts** are `Msat`; ids are lowercase hex strings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from fedimint_gw.domain.amount import FeeSchedule, Msat
from fedimint_gw.domain.ids import FederationId, ShortChannelId

# `spend_ecash` operation ids starting with this name requests nobody can retry (an operator's
# send without an idempotency key): after a crash their notes come back to the gateway.
VOLATILE_PREFIX = "volatile-"


class Feature(enum.Enum):
    """Optional abilities an adapter declares in `features`."""

    SELF_REGISTRATION = "self_registration"  # v1: gateways register themselves with a TTL
    VETTED_GATEWAYS = "vetted_gateways"  # v2: the federation's admin lists gateways
    INVOICE_BY_GATEWAY = "invoice_by_gateway"  # v2: the gateway's node is the invoice payee
    CANCEL_OUTGOING = "cancel_outgoing"  # v1: cancel makes the user's refund immediate
    FORFEIT_OUTGOING = "forfeit_outgoing"  # v2: a forfeit signature given to the user
    CONSENSUS_DECRYPTION = "consensus_decryption"  # v1: the federation decrypts the preimage
    GATEWAY_DECRYPTION = "gateway_decryption"  # v2: the gateway combines decryption shares


@dataclass(frozen=True)
class ApiVersion:
    """A federation API version: major selects the adapter, minor is the feature level."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class FederationInfo:
    """What the gateway shows about a connected federation."""

    federation_id: FederationId
    name: str
    api_version: ApiVersion
    guardians: int
    threshold: int
    tx_fee: Msat
    block_height: int


class RegistrationStatus(enum.Enum):
    REGISTERED = "registered"  # self-registered; valid until `expires_at`
    VETTED = "vetted"  # on the federation's list of gateways
    NOT_VETTED = "not_vetted"  # the federation's admin has not listed this gateway


@dataclass(frozen=True)
class GatewayRegistration:
    """What the gateway tells a federation about itself."""

    node_id: str
    scid: ShortChannelId
    api_url: str
    fees: FeeSchedule
    ttl_secs: int


@dataclass(frozen=True)
class RegistrationResult:
    status: RegistrationStatus
    expires_at: int | None = None


@dataclass(frozen=True)
class IncomingRequest:
    """A receive the gateway may fund: an offer (v1) or a registered contract (v2)."""

    contract_id: str
    payment_hash: str
    amount: Msat
    expiry: int  # unix time (v1 offer) or block height (v2 contract)
    data: dict[str, object]  # adapter-private fields needed to fund it


class IncomingState(enum.Enum):
    FUNDED = "funded"  # funding accepted; preimage not known yet
    PREIMAGE = "preimage"  # decrypted and valid
    REFUNDED = "refunded"  # decryption gave an invalid preimage; gateway refunded
    PENDING = "pending"  # not decided yet: ask again


@dataclass(frozen=True)
class IncomingOutcome:
    state: IncomingState
    preimage: bytes | None = None
    refunded: Msat | None = None
    """REFUNDED: the ecash the refund gave back (the contract less the federation's fees on the
    refund; the same figure on every call), None when unknown."""


class OutgoingState(enum.Enum):
    FUNDED = "funded"  # locked to the gateway, claimable with the preimage
    CLAIMED = "claimed"
    CANCELLED = "cancelled"  # cancelled or forfeited: the user can refund
    REFUNDED = "refunded"


@dataclass(frozen=True)
class OutgoingContract:
    """A user's contract paying the gateway to pay an invoice."""

    contract_id: str
    payment_hash: str
    amount: Msat
    timelock_height: int
    state: OutgoingState
    gateway_key_matches: bool


@dataclass(frozen=True)
class CancelResult:
    """How the user gets the money back: at once (cancel) or with this forfeit signature."""

    contract_id: str
    forfeit_signature: str | None = None


@dataclass(frozen=True)
class EcashNotes:
    """Out-of-band ecash: a serialised bundle of notes and its total, and what the federation
    took for making them (paid from the gateway's other notes, on top of `amount`)."""

    amount: Msat
    notes: str
    fee: Msat


@dataclass(frozen=True)
class EcashFees:
    """What the federation takes when notes worth an amount change hands (`ecash_fees`)."""

    spend: Msat  # handing the notes out (`spend_ecash`): paid on top, from the gateway's other notes
    reissue: Msat  # reissuing them (`receive_ecash`): taken from their value


@dataclass(frozen=True)
class NotesSummary:
    """What a notes string holds, read without the network (`inspect_ecash`)."""

    federation_id: str  # the federation the notes say they belong to (hex)
    amount: Msat
    fingerprint: str  # the same for the same set of notes, however they are encoded
    received: bool  # this gateway already reissued (or is reissuing) exactly these notes
    # What reissuing exactly these notes would cost in this federation's fees (per-note mint
    # fees depend on how the amount is split: many small notes cost more than a spend's few).
    reissue_fee: Msat


class FederationClient(Protocol):
    """The gateway's view of one federation. See the module docstring for the contract."""

    features: frozenset[Feature]
    gateway_pubkey: str  # the gateway's key in this federation (hex): refund key, contract key

    async def info(self) -> FederationInfo:
        """Federation id, name, negotiated version, guardian counts, fee, block height."""
        ...

    async def balance(self) -> Msat:
        """Ecash the gateway holds in this federation (from its own notes; no network)."""
        ...

    async def register(self, registration: GatewayRegistration) -> RegistrationResult:
        """Self-register (v1) or check vetting (v2). Repeat before `expires_at`."""
        ...

    async def lookup_incoming(self, payment_hash: str) -> IncomingRequest | None:
        """The offer (v1) or registered contract (v2) for this hash, or None."""
        ...

    async def accept_incoming_contract(self, contract: dict[str, object], amount: Msat) -> IncomingRequest:
        """v2 (INVOICE_BY_GATEWAY): check a receiver's contract handed to `create_bolt11_invoice`
        (refund key is ours, amount matches, not expired) and describe it. Raises InvalidInput."""
        ...

    async def block_height(self) -> int:
        """The federation's view of the chain height (timelocks are in this height)."""
        ...

    async def fund_incoming(self, request: IncomingRequest, operation_id: str) -> str:
        """Fund the receive with gateway ecash; returns the contract id once the federation
        accepted the funding (its preimage may be read from then on). The change notes may be
        finished afterwards, by the adapter (and by `OperationLog.resume_operations` after a
        restart): until then they are missing from `balance`. Idempotent per operation id."""
        ...

    async def funding_fee(self, request: IncomingRequest, operation_id: str) -> Msat:
        """What the federation took for the funding `fund_incoming(request, operation_id)`
        stored, on top of the contract's `request.amount`: devfed's flat transaction fee,
        Fedimint's mint fees (per note of inputs and change) plus the Lightning module's
        contract fee. Read from the stored operation, so every call (a replay, after a restart)
        gives the same figure. Raises NotFound when no such funding is stored."""
        ...

    async def abandon_funding(self, operation_id: str) -> bool:
        """Give up a `fund_incoming` whose outcome is unknown (the federation did not answer).
        True: it certainly never happened and never will (a threshold accepted a conflicting
        transaction spending its inputs); False: the federation accepted it. Raises
        FederationUnreachable while neither is certain (never decided on one guardian's word)."""
        ...

    async def await_preimage(self, contract_id: str, timeout: float) -> IncomingOutcome:
        """Wait (up to `timeout`) for the decrypted preimage or the refund."""
        ...

    async def verify_outgoing(self, contract_id: str) -> OutgoingContract:
        """Fetch and check a user's outgoing contract (raises NotFound if absent)."""
        ...

    async def claim_outgoing(self, contract_id: str, preimage: bytes) -> Msat:
        """Claim the outgoing contract with the preimage; returns the ecash gained (the same
        figure on a replay): the contract's amount less what the federation took for the claim."""
        ...

    async def check_send_auth(self, contract_id: str, invoice: str, auth: object) -> bool:
        """Whether a send request's `auth` proves it comes from the contract's owner
        (always true for versions whose send request carries no auth)."""
        ...

    async def cancel_outgoing(self, contract_id: str) -> CancelResult:
        """Release the contract so the user is refunded now (cancel, or forfeit signature)."""
        ...

    async def spend_ecash(self, amount: Msat, operation_id: str) -> EcashNotes:
        """Take `amount` of the gateway's ecash out as notes (exact amount, reissued if needed).
        The same operation id again returns the same notes (and fee). An id starting with
        `VOLATILE_PREFIX` names a request nobody retries: cut short by a crash, its notes are
        taken back (by `OperationLog.resume_operations`) instead of kept for a retry."""
        ...

    async def receive_ecash(self, notes: str) -> Msat:
        """Reissue out-of-band notes into the gateway's own; returns the amount received.
        Idempotent per set of notes: the same notes again return the same amount."""
        ...

    async def ecash_fees(self, amount: Msat) -> EcashFees:
        """The federation's fees for handing out notes worth `amount` and for reissuing them,
        from its public config alone (no network, no wallet): every gateway in the federation
        computes the same figures, so two gateways agree on an exchange's price. A flat
        transaction fee (devfed) or per-note mint fees (Fedimint: per input and per output, for
        the notes a spend of `amount` makes). `reissue` is exact for notes a spend made; `spend`
        is an estimate, since the real one depends on the notes the wallet holds (change);
        `EcashNotes.fee` says what a spend really cost."""
        ...

    async def inspect_ecash(self, notes: str) -> NotesSummary:
        """Decode notes without the network: their federation, total and whether this gateway
        already received exactly them (raises InvalidInput when malformed)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class OperationLog(Protocol):
    """An adapter whose ecash operations are logged before they are submitted, so a crash can
    be settled at the next start (every built-in adapter; third-party ones may opt in)."""

    async def resume_operations(self) -> int:
        """Finish, or settle the abandon of, every operation a crash left unfinished; returns
        how many were settled. Raises the first failure after trying all of them."""
        ...
