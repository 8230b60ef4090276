"""Console sessions: a random token in a signed cookie, the session itself held in memory.

Held in memory, a session ends at sign-out, at expiry, when its user is disabled, and when the
service restarts (everyone signs in again). Each session has its own CSRF token, which every
state-changing form sends back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

COOKIE = "facegate_session"


@dataclass(frozen=True)
class Session:
    token: str
    user_id: str
    csrf: str
    expires: float  # time.time()


class Sessions:
    def __init__(self, hours: float) -> None:
        self.seconds = hours * 3600
        self._by_token: dict[str, Session] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _sign(key: bytes, token: str) -> str:
        return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()

    def start(self, key: bytes, user_id: str) -> tuple[Session, str]:
        """A new session and the cookie value that carries it."""
        s = Session(secrets.token_urlsafe(32), user_id, secrets.token_urlsafe(32), time.time() + self.seconds)
        with self._lock:
            now = time.time()
            for t in [t for t, old in self._by_token.items() if old.expires <= now]:
                del self._by_token[t]
            self._by_token[s.token] = s
        return s, f"{s.token}.{self._sign(key, s.token)}"

    def read(self, key: bytes, cookie: str | None) -> Session | None:
        """The live session a cookie carries, if its signature holds."""
        if not cookie or "." not in cookie:
            return None
        token, sig = cookie.rsplit(".", 1)
        if not hmac.compare_digest(sig, self._sign(key, token)):
            return None
        with self._lock:
            s = self._by_token.get(token)
            if s is not None and s.expires <= time.time():
                del self._by_token[token]
                s = None
        return s

    def end(self, token: str) -> None:
        with self._lock:
            self._by_token.pop(token, None)

    def __len__(self) -> int:
        return len(self._by_token)
