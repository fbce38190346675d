"""A circuit breaker per backend: skip a backend that keeps failing, try it again later.

closed --(failure_threshold failed attempts in a row)--> open
open   --(reset_after_s elapsed)--> one trial request is let through (half-open); the timer
        restarts, so other requests keep skipping the backend while the trial runs
trial succeeds --> closed;  trial fails --> open again

A failure is one failed attempt (a try or a retry: a backend that times out is known dead
after the first wave of attempts, not after every request's retries); answers that blame the
client (400, 413, 422) are not failures. Re-arming the timer on each trial means a
trial cancelled by a client disconnect never leaves the breaker stuck half-open.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "half_open", "open"]
STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 3, reset_after_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.clock = clock
        self.failures = 0  # consecutive
        self.opened_at: float | None = None

    @property
    def state(self) -> State:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.reset_after_s else "open"

    def allow(self) -> bool:
        """May a request go to this backend now? In half-open state, True for one caller."""
        if self.opened_at is None:
            return True
        now = self.clock()
        if now - self.opened_at >= self.reset_after_s:
            self.opened_at = now  # this caller is the trial; the rest wait another period
            return True
        return False

    def retry_in(self) -> float:
        """Seconds until a trial request is allowed (0 when closed)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.reset_after_s - (self.clock() - self.opened_at))

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def record_failure(self) -> None:
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.failure_threshold:
            self.opened_at = self.clock()
