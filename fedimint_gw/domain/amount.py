"""Amounts in millisatoshi and the gateway's fee schedule."""

from __future__ import annotations

import re
from dataclasses import dataclass

_AMOUNT_TEXT = re.compile(r"([0-9]{1,20})(msat|sat)?", re.ASCII)
MAX_MSAT = 21_000_000 * 100_000_000 * 1000


@dataclass(frozen=True, order=True)
class Msat:
    """A non-negative amount in millisatoshi. Arithmetic never goes below zero silently."""

    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise ValueError(f"amount must be an integer number of msat, got {self.value!r}")
        if self.value < 0 or self.value > MAX_MSAT:
            raise ValueError(f"amount out of range: {self.value} msat")

    @classmethod
    def parse(cls, raw: object) -> Msat:
        """Parse an int, or ASCII digits optionally ending in 'msat' or 'sat' (nothing around)."""
        if isinstance(raw, Msat):
            return raw
        if isinstance(raw, bool):
            raise ValueError("amount must be a number of msat, not a boolean")
        if isinstance(raw, int):
            return cls(raw)
        if isinstance(raw, str):
            m = _AMOUNT_TEXT.fullmatch(raw)
            if m is not None:
                return cls(int(m.group(1)) * (1000 if m.group(2) == "sat" else 1))
        raise ValueError(f"not an amount: {raw!r} (give msat as an integer, or '<n>sat')")

    def __add__(self, other: Msat) -> Msat:
        return Msat(self.value + other.value)

    def __sub__(self, other: Msat) -> Msat:
        if other.value > self.value:
            raise ValueError(f"{self.value} msat - {other.value} msat would be negative")
        return Msat(self.value - other.value)

    def __int__(self) -> int:
        return self.value

    def __str__(self) -> str:
        return f"{self.value}msat"


@dataclass(frozen=True)
class FeeSchedule:
    """A base fee plus a proportional part in parts per million of the amount."""

    base_msat: int
    ppm: int

    def __post_init__(self) -> None:
        if isinstance(self.base_msat, bool) or not isinstance(self.base_msat, int) or self.base_msat < 0:
            raise ValueError(f"base fee must be a non-negative integer msat, got {self.base_msat!r}")
        if isinstance(self.ppm, bool) or not isinstance(self.ppm, int) or not 0 <= self.ppm <= 1_000_000:
            raise ValueError(f"ppm must be an integer from 0 to 1000000, got {self.ppm!r}")

    def fee(self, amount: Msat) -> Msat:
        """The fee for `amount`, rounded down (the payer never pays more than quoted)."""
        return Msat(self.base_msat + amount.value * self.ppm // 1_000_000)

    def amount_before_fee(self, gross: Msat) -> Msat:
        """The largest net amount whose `net + fee(net)` does not exceed `gross`."""
        if gross.value < self.base_msat:
            return Msat(0)
        net = (gross.value - self.base_msat) * 1_000_000 // (1_000_000 + self.ppm)
        while net + 1 + self.fee(Msat(net + 1)).value <= gross.value:
            net += 1
        while net > 0 and net + self.fee(Msat(net)).value > gross.value:
            net -= 1
        return Msat(net)
