"""Moving-window rate limits (the `limits` library), per API key or per client address."""

from __future__ import annotations

import time

from limits import parse as parse_limit
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from facegate.errors import ConfigError, RateLimited


class RateLimit:
    """At most `text` (e.g. "120/minute") per identity."""

    def __init__(self, text: str, setting: str = "api.rate_limit") -> None:
        try:
            self.rate = parse_limit(text)
        except ValueError as exc:
            raise ConfigError(f"{setting} {text!r}: {exc}") from exc
        self.text = text
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def _refuse(self, identity: str, what: str) -> RateLimited:
        reset = self._limiter.get_window_stats(self.rate, identity).reset_time
        return RateLimited(
            f"rate limit of {self.text} reached for {what}",
            retry_after=max(1, int(reset - time.time()) + 1),
        )

    def hit(self, identity: str, what: str) -> None:
        """Count a request; `RateLimited` (with when to retry) over the limit."""
        if not self._limiter.hit(self.rate, identity):
            raise self._refuse(identity, what)

    def check(self, identity: str, what: str) -> None:
        """`RateLimited` if the identity is already over the limit; counts nothing."""
        if not self._limiter.test(self.rate, identity):
            raise self._refuse(identity, what)
