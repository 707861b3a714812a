"""Value types and limits shared by the consensus encoder and decoder (see `encoding.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
E = TypeVar("E")

MAX_DECODE_SIZE = 16_000_000
"""Upstream's limit for one decoded value; we refuse larger inputs outright."""
DEFAULT_MAX_DEPTH = 64
U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


K = TypeVar("K", bound=_Ordered)


@dataclass(frozen=True)
class UnknownVariant:
    """An enum variant this code does not know: upstream's `Default { variant, bytes }`."""

    variant: int
    data: bytes


@dataclass(frozen=True)
class Ok(Generic[T]):
    """The `Ok` side of a consensus-encoded `Result`."""

    value: T


@dataclass(frozen=True)
class Err(Generic[E]):
    """The `Err` side of a consensus-encoded `Result`."""

    error: E


@dataclass(frozen=True)
class Duration:
    """A `std::time::Duration`: whole seconds and nanoseconds (< 10^9)."""

    secs: int
    nanos: int = 0
