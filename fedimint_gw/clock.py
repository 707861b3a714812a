"""Time, injected: services take a Clock so tests can control it."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Seconds since the epoch."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> int:
        return int(time.time())
