"""Sign-in attempts counted in a moving window: each attempt is counted as it starts (so a
parallel burst cannot all slip past one check), and a successful one is given back (only
failures hold the limit)."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque

from limits import parse as parse_limit

from facegate.errors import ConfigError, RateLimited

_SWEEP_AT = 10_000  # identities held before the expired ones are swept out


def client_network(host: str) -> str:
    """Who an address limit counts: the address itself, an IPv6 client by its /64 (one host
    is usually given a whole /64, and could otherwise change address on every attempt)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Attempts:
    """At most `text` (e.g. "5/minute") attempts per identity."""

    def __init__(self, text: str, setting: str) -> None:
        try:
            rate = parse_limit(text)
        except ValueError as exc:
            raise ConfigError(f"{setting} {text!r}: {exc}") from exc
        self.text = text
        self.amount, self.window = rate.amount, float(rate.get_expiry())
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, identity: str, now: float) -> deque[float]:
        times = self._times.setdefault(identity, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def hit(self, identity: str, what: str) -> float:
        """Count an attempt (its stamp, to give it back); `RateLimited` over the limit, counting nothing."""
        with self._lock:
            now = time.monotonic()
            if len(self._times) > _SWEEP_AT:
                for k in [k for k in self._times if not self._recent(k, now)]:
                    del self._times[k]
            times = self._recent(identity, now)
            if len(times) >= self.amount:
                retry = max(1, int(times[0] + self.window - now) + 1)
                raise RateLimited(f"rate limit of {self.text} reached for {what}", retry_after=retry)
            times.append(now)
            return now

    def give_back(self, identity: str, stamp: float) -> None:
        """Uncount the attempt counted at `stamp` (it succeeded)."""
        with self._lock:
            times = self._times.get(identity)
            if times is not None and stamp in times:
                times.remove(stamp)
