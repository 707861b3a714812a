"""What the sequencer asks of a Lightning module besides the mint (``ln``, ``lnv2``).

A module checks one input or output against its state and answers a :class:`ItemEffect`: the
amount and fee for the balance, the input's key for the transaction signature, a key that
must be unique within the transaction (one contract spent twice), and ``apply``, which
writes the module's state inside the sequencer's ``store.atomic()`` block. A refusal is a
:class:`ModuleRefusal` carrying the module's encoded error enum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ItemEffect:
    amount: int
    fee: int
    pubkey: bytes
    """The 33-byte key that must sign the transaction (inputs; empty for outputs)."""
    unique: bytes
    apply: Callable[[bytes], None]
    """Called with the txid inside the sequencer's atomic block."""


class ModuleRefusal(Exception):
    """An input or output the module refuses; ``encoded`` is its error enum's encoding."""

    def __init__(self, encoded: bytes, reason: str) -> None:
        super().__init__(reason)
        self.encoded = encoded
        self.reason = reason


class ConsensusModule(Protocol):
    def check_input(self, data: bytes) -> ItemEffect:
        """Decode and check one input (DecodeError for garbage, ModuleRefusal when refused)."""
        ...

    def check_output(self, data: bytes, txid: bytes, out_idx: int) -> ItemEffect:
        """Decode and check one output at ``(txid, out_idx)``."""
        ...
