"""Console sessions: a random token in a signed cookie, the session itself held in memory.

Held in memory, a session ends at sign-out, at expiry, after `idle` seconds without a request,
when its user is disabled, and when the service restarts (everyone signs in again). Each session
has its own CSRF token, which every state-changing form sends back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

# Over HTTPS the cookies carry the __Host- prefix: a browser then keeps them only if they are
# Secure, for path / and this host alone (no sibling subdomain can plant or overwrite them).
COOKIE = "facegate_session"
LOGIN_COOKIE = "facegate_login"  # the sign-in form's own CSRF token (no session yet)
KNOWN_COOKIE = "facegate_known"  # a browser some user signed in from (`KnownBrowsers`)
KNOWN_DAYS = 90


def cookie_name(name: str, secure: bool) -> str:
    return f"__Host-{name}" if secure else name


@dataclass(frozen=True)
class Session:
    token: str
    user_id: str
    csrf: str
    expires: float  # time.time()


class Sessions:
    def __init__(self, hours: float, idle_minutes: float = 30) -> None:
        self.seconds = hours * 3600
        self.idle = idle_minutes * 60
        self._by_token: dict[str, Session] = {}
        self._seen: dict[str, float] = {}  # token -> time.time() of its last request
        self._lock = threading.Lock()

    @staticmethod
    def _sign(key: bytes, token: str) -> str:
        return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()

    def _live(self, token: str, now: float) -> Session | None:
        """The session if neither past its expiry nor idle too long (ended otherwise); lock held."""
        s = self._by_token.get(token)
        if s is not None and (s.expires <= now or now - self._seen.get(token, 0.0) > self.idle):
            self._drop(token)
            s = None
        return s

    def _drop(self, token: str) -> None:
        self._by_token.pop(token, None)
        self._seen.pop(token, None)

    def start(self, key: bytes, user_id: str) -> tuple[Session, str]:
        """A new session and the cookie value that carries it."""
        s = Session(secrets.token_urlsafe(32), user_id, secrets.token_urlsafe(32), time.time() + self.seconds)
        with self._lock:
            now = time.time()
            for t in list(self._by_token):
                self._live(t, now)
            self._by_token[s.token] = s
            self._seen[s.token] = now
        return s, f"{s.token}.{self._sign(key, s.token)}"

    def verify(self, key: bytes, cookie: str | None) -> str | None:
        """The token a cookie carries if its signature holds (live or not)."""
        # Never a non-ASCII value: compare_digest refuses such str (TypeError), and no cookie
        # facegate sets has one.
        if not cookie or "." not in cookie or not cookie.isascii():
            return None
        token, sig = cookie.rsplit(".", 1)
        return token if hmac.compare_digest(sig.encode(), self._sign(key, token).encode()) else None

    def read(self, key: bytes, cookie: str | None) -> Session | None:
        """The live session a cookie carries, if its signature holds; a request keeps it from idling."""
        token = self.verify(key, cookie)
        if token is None:
            return None
        with self._lock:
            now = time.time()
            s = self._live(token, now)
            if s is not None:
                self._seen[token] = now
        return s

    def alive(self, token: str) -> bool:
        """Whether the session is still live (not ended, expired or idle); counts as no request."""
        with self._lock:
            return self._live(token, time.time()) is not None

    def end(self, token: str) -> None:
        with self._lock:
            self._drop(token)

    def __len__(self) -> int:
        return len(self._by_token)


class KnownBrowsers:
    """Tokens that say "this browser signed in as NAME before": a sign-in from a known browser
    skips the name-wide limit of failed sign-ins, so strangers guessing a name from many
    addresses do not lock its user out (each token is limited on its own instead). The cookie
    holds when it was issued, a random id and a MAC over both and the name; never the name."""

    def __init__(self, days: float = KNOWN_DAYS) -> None:
        self.seconds = days * 86400

    @staticmethod
    def _sign(key: bytes, name: str, issued: str, nonce: str) -> str:
        # "known" first: no session token (url-safe, no newline) can be signed into one of these.
        message = f"known\n{issued}\n{nonce}\n{name}"
        return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()

    def issue(self, key: bytes, name: str) -> str:
        """The cookie value for a browser that `name` just signed in from."""
        issued, nonce = str(int(time.time())), secrets.token_urlsafe(16)
        return f"{issued}.{nonce}.{self._sign(key, name, issued, nonce)}"

    def token(self, key: bytes, cookie: str | None, name: str) -> str | None:
        """The token's id if `cookie` was issued to `name` and has not expired; None otherwise."""
        if not cookie or not cookie.isascii() or cookie.count(".") != 2:
            return None
        issued, nonce, sig = cookie.split(".")
        if not issued.isdigit() or time.time() - int(issued) > self.seconds:
            return None
        good = hmac.compare_digest(sig.encode(), self._sign(key, name, issued, nonce).encode())
        return nonce if good else None
