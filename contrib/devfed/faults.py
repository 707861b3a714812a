"""One guardian's answers to the reads and submissions that move money, with its fault applied.

Both API versions call these instead of the sequencer directly, so a fault-injected guardian
misbehaves the same way in v1 and v2 (:class:`contrib.devfed.guardian.Fault` says how):
- ``lying``: the contract views it was told to show (for contracts that may not exist), a
  block height off by ``height_offset``, and (``refuse_submissions``) a ``double_spend``
  refusal for a submission it passed on to consensus all the same;
- ``withholding``: no preimage, ever: v1 incoming contracts still "decrypting", v2 views
  without the preimage, no decryption share;
- ``unsigning``: no signature shares for any transaction's notes (the guardian seems offline
  to that call only) until the fault is lifted; everything else it answers honestly;
- ``dropping``: it processes a submission and gives no answer (the submitter sees the
  guardian offline); with ``defer`` it holds the submission back until the fault is lifted,
  with ``discard`` it loses it unprocessed.
"""

from __future__ import annotations

import contextlib

from contrib.devfed.contracts import ContractState
from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.federation import Federation
from contrib.devfed.guardian import FaultMode
from contrib.devfed.transactions import OutputKind
from fedimint_gw.crypto.threshold_bdhke import BlindSignatureShare
from fedimint_gw.crypto.threshold_elgamal import DecryptionShare

Json = dict[str, object]


def _dropped(peer_id: int) -> DevfedError:
    return DevfedError(ErrorCode.GUARDIAN_OFFLINE, f"guardian {peer_id} dropped its answer")


async def submit(fed: Federation, peer_id: int, raw: object, *, faucet: bool = False) -> Json:
    """Submit a transaction through guardian `peer_id`."""
    fault = fed.guardian(peer_id).fault
    if fault.mode is FaultMode.DROPPING and not faucet:
        if fault.defer:
            fed.guardian(peer_id).deferred.append(raw)
        elif not fault.discard:
            with contextlib.suppress(DevfedError):  # processed either way; the answer is lost
                await fed.sequencer.submit(raw)
        raise _dropped(peer_id)
    result = await fed.sequencer.submit(raw, faucet=faucet)
    if fault.mode is FaultMode.LYING and fault.refuse_submissions and not faucet:
        raise DevfedError(ErrorCode.DOUBLE_SPEND, "inputs[0] note was already spent (a lie)")
    return result


async def flush(fed: Federation, peer_id: int) -> list[Json]:
    """Apply the submissions a deferring guardian held back (when its fault is lifted)."""
    guardian = fed.guardian(peer_id)
    held, guardian.deferred = guardian.deferred, []
    results: list[Json] = []
    for raw in held:
        try:
            results.append(dict(await fed.sequencer.submit(raw)))
        except DevfedError as exc:
            results.append({"error": exc.to_dict()})
    return results


def contract(fed: Federation, peer_id: int, contract_id: str) -> Json:
    """The contract view guardian `peer_id` gives."""
    fault = fed.guardian(peer_id).fault
    if fault.mode is FaultMode.LYING and contract_id in fault.contracts:
        return dict(fault.contracts[contract_id])
    view = fed.sequencer.contract(contract_id)
    if fault.mode is FaultMode.WITHHOLDING:
        view["preimage"] = None
        if view["kind"] == OutputKind.INCOMING_CONTRACT_V1.value and view["state"] in (
            ContractState.PREIMAGE.value,
            ContractState.CLAIMED.value,
        ):
            view["state"] = ContractState.DECRYPTING.value
    return view


async def block_height(fed: Federation, peer_id: int) -> int:
    """The block height guardian `peer_id` reports."""
    fault = fed.guardian(peer_id).fault
    height = await fed.chain.height()
    return height + fault.height_offset if fault.mode is FaultMode.LYING else height


def signature_shares(fed: Federation, peer_id: int, txid: str) -> list[tuple[int, BlindSignatureShare]]:
    """Guardian `peer_id`'s signature shares of an accepted transaction's notes (none from an
    unsigning guardian: it answers as if offline)."""
    if fed.guardian(peer_id).fault.mode is FaultMode.UNSIGNING:
        raise DevfedError(ErrorCode.GUARDIAN_OFFLINE, f"guardian {peer_id} is not signing notes")
    return fed.signature_shares(peer_id, txid)


def decryption_share(fed: Federation, peer_id: int, contract_id: str) -> DecryptionShare:
    """v2: guardian `peer_id`'s decryption share (a withholding guardian has none to give)."""
    if fed.guardian(peer_id).fault.mode is FaultMode.WITHHOLDING:
        raise DevfedError(ErrorCode.NOT_FUNDED, "no decryption share (withheld)")
    return fed.decryption_share(peer_id, contract_id)
