"""Identifiers: federation ids, short channel ids, payment hashes, node ids."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_SCID = re.compile(r"([0-9]{1,8})x([0-9]{1,8})x([0-9]{1,5})", re.ASCII)


@dataclass(frozen=True)
class FederationId:
    """A federation's 32-byte id, as 64 lowercase hex characters."""

    hex: str

    def __post_init__(self) -> None:
        if not isinstance(self.hex, str) or not _HEX64.fullmatch(self.hex):
            raise ValueError(f"a federation id is 64 lowercase hex characters, got {self.hex!r}")

    @classmethod
    def parse(cls, raw: object) -> FederationId:
        """Accept hex of either case, nothing around it; anything else is a ValueError."""
        if not isinstance(raw, str):
            raise ValueError(f"a federation id is a hex string, got {raw!r}")
        return cls(raw.lower())

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.hex)

    def short(self) -> str:
        return self.hex[:8]

    def __str__(self) -> str:
        return self.hex


@dataclass(frozen=True)
class PaymentHash:
    """A 32-byte payment hash."""

    hex: str

    def __post_init__(self) -> None:
        if not isinstance(self.hex, str) or not _HEX64.fullmatch(self.hex):
            raise ValueError(f"a payment hash is 64 lowercase hex characters, got {self.hex!r}")

    @classmethod
    def parse(cls, raw: object) -> PaymentHash:
        if not isinstance(raw, str):
            raise ValueError(f"a payment hash is a hex string, got {raw!r}")
        return cls(raw.lower())

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.hex)

    def __str__(self) -> str:
        return self.hex


@dataclass(frozen=True, order=True)
class ShortChannelId:
    """A short channel id: block height, transaction index and output index."""

    block: int
    tx: int
    out: int

    def __post_init__(self) -> None:
        if not (0 <= self.block < 1 << 24 and 0 <= self.tx < 1 << 24 and 0 <= self.out < 1 << 16):
            raise ValueError(f"short channel id out of range: {self.block}x{self.tx}x{self.out}")

    @classmethod
    def parse(cls, raw: object) -> ShortChannelId:
        """Parse 'BLOCKxTXxOUT' (the CLN form) or the 64-bit integer form."""
        if isinstance(raw, int) and not isinstance(raw, bool):
            return cls.from_int(raw)
        if isinstance(raw, str):
            m = _SCID.fullmatch(raw)
            if m:
                return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        raise ValueError(f"not a short channel id: {raw!r} (expected BLOCKxTXxOUT)")

    @classmethod
    def from_int(cls, value: int) -> ShortChannelId:
        if not 0 <= value < 1 << 64:
            raise ValueError(f"short channel id out of range: {value}")
        return cls(value >> 40, (value >> 16) & 0xFFFFFF, value & 0xFFFF)

    def to_int(self) -> int:
        return (self.block << 40) | (self.tx << 16) | self.out

    def __str__(self) -> str:
        return f"{self.block}x{self.tx}x{self.out}"


def parse_node_id(raw: object) -> str:
    """Validate a 33-byte compressed public key given as hex; return it lowercase."""
    if isinstance(raw, str):
        text = raw.lower()
        if re.fullmatch(r"0[23][0-9a-f]{64}", text, re.ASCII):
            return text
    raise ValueError(f"not a node id (66 hex characters, starting 02 or 03): {raw!r}")
