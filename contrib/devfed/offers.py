"""v1 offers (receivers sell a preimage) and v1 gateway self-registrations."""

from __future__ import annotations

from collections.abc import Callable

from contrib.devfed.codec import as_object, bad, get_hex, get_int, get_pubkey, get_str, verify
from contrib.devfed.config import PublicConfig
from contrib.devfed.contracts import GATEWAY_REGISTRATION_PURPOSE
from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.store import FederationStore
from contrib.devfed.transactions import offer_context
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.threshold_elgamal import Ciphertext, verify_ciphertext

Json = dict[str, object]
MAX_GATEWAY_TTL = 86_400


class OfferBook:
    """Offers and gateway registrations (API v1 only)."""

    def __init__(self, config: PublicConfig, store: FederationStore, clock: Callable[[], float]) -> None:
        self._config = config
        self._store = store
        self._clock = clock

    def publish(self, raw: object) -> Json:
        """Store an offer; the identical offer again is a no-op, a different one is ``offer_exists``."""
        data = as_object(raw, "offer")
        offer: Json = {
            "payment_hash": get_hex(data, "payment_hash", "offer", 32),
            "amount_msat": get_int(data, "amount_msat", "offer", 1),
            "claim_pubkey": get_pubkey(data, "claim_pubkey", "offer"),
            "expiry": get_int(data, "expiry", "offer", 1),
        }
        try:
            ciphertext = Ciphertext.from_dict(data.get("encrypted_preimage"))
        except CryptoError as exc:
            raise bad(f"offer.encrypted_preimage: {exc}") from None
        offer["encrypted_preimage"] = ciphertext.to_dict()
        if not verify_ciphertext(self._config.ln_pubkey, ciphertext, offer_context(offer)):
            raise bad("offer.encrypted_preimage is not encrypted to ln.pubkey with this offer's context")
        if int(str(offer["expiry"])) <= self._clock():
            raise DevfedError(ErrorCode.OFFER_EXPIRED, "offer expiry is in the past")
        with self._store.atomic():
            known = self._store.get_offer(str(offer["payment_hash"]))
            if known is not None:
                if {k: v for k, v in known.items() if k != "contract_id"} == offer:
                    return known
                raise DevfedError(ErrorCode.OFFER_EXISTS, "another offer has this payment hash")
            self._store.put_offer(str(offer["payment_hash"]), offer)
        return offer

    def get(self, payment_hash: str) -> Json:
        """An offer, else ``unknown_offer``."""
        offer = self._store.get_offer(payment_hash)
        if offer is None:
            raise DevfedError(ErrorCode.UNKNOWN_OFFER, f"no offer for payment hash {payment_hash}")
        return offer

    def take_for_contract(self, payment_hash: str, amount_msat: int, contract_id: str) -> Json:
        """Bind an offer to the incoming contract that buys it (inside the caller's atomic block)."""
        offer = self.get(payment_hash)
        if "contract_id" in offer:
            raise DevfedError(ErrorCode.CONTRACT_EXISTS, "this offer was already bought")
        if int(str(offer["expiry"])) <= self._clock():
            raise DevfedError(ErrorCode.OFFER_EXPIRED, "the offer has expired")
        if amount_msat < int(str(offer["amount_msat"])):
            raise DevfedError(ErrorCode.UNBALANCED, f"contract must pay at least {offer['amount_msat']} msat")
        offer["contract_id"] = contract_id
        self._store.put_offer(payment_hash, offer)
        return {k: v for k, v in offer.items() if k != "contract_id"}

    def register_gateway(self, raw: object) -> Json:
        """Store a signed v1 gateway registration until ``now + ttl``."""
        data = as_object(raw, "request")
        reg_raw = as_object(data.get("registration"), "registration")
        fees = as_object(reg_raw.get("fees"), "registration.fees")
        reg: Json = {
            "node_pubkey": get_pubkey(reg_raw, "node_pubkey", "registration"),
            "gateway_pubkey": get_pubkey(reg_raw, "gateway_pubkey", "registration"),
            "scid": get_int(reg_raw, "scid", "registration"),
            "api_url": get_str(reg_raw, "api_url", "registration"),
            "fees": {
                "base_msat": get_int(fees, "base_msat", "registration.fees"),
                "ppm": get_int(fees, "ppm", "registration.fees"),
            },
            "ttl": get_int(reg_raw, "ttl", "registration", 1),
        }
        if int(str(reg["ttl"])) > MAX_GATEWAY_TTL:
            raise bad(f"registration.ttl must be at most {MAX_GATEWAY_TTL}")
        if not verify(str(reg["gateway_pubkey"]), GATEWAY_REGISTRATION_PURPOSE, reg, data.get("signature")):
            raise DevfedError(ErrorCode.BAD_SIGNATURE, "registration must be signed by gateway_pubkey")
        expires_at = self._clock() + int(str(reg["ttl"]))
        stored = dict(reg, expires_at=expires_at)
        with self._store.atomic():
            self._store.put_gateway_v1(str(reg["gateway_pubkey"]), stored, expires_at)
        return stored

    def gateways(self) -> list[Json]:
        """Unexpired registrations."""
        return self._store.list_gateways_v1(self._clock())
