"""Webhooks: events POSTed as JSON, signed with HMAC-SHA256, retried with backoff.

Receivers check `X-Facegate-Signature: sha256=<hex>` over `<timestamp>.<body>` with the shared
secret, and reject old timestamps (replays); `verify_signature` does both. Unlock commands also
carry a single-use `nonce`: a door controller keeps a `ReplayGuard` so that a captured command
sent again within the timestamp tolerance opens nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from facegate.events.store import Event
from facegate.settings import WebhookSettings

RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class DeliveryFailed(Exception):
    """A webhook not delivered; its message names the receiver by `origin` only."""


def origin(url: str) -> str:
    """scheme://host of a webhook URL: what a message may show of it (its path or query may
    carry a token)."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "(invalid URL)"
    return f"{u.scheme}://{u.host}" if u.scheme and u.host else "(invalid URL)"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """True if `signature` is ours for this body and the timestamp is recent."""
    try:
        age = abs((now if now is not None else time.time()) - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


class ReplayGuard:
    """For receivers of unlock commands: accept each signed, recent command once."""

    def __init__(self, secret: bytes, tolerance_s: float = 300) -> None:
        self.secret = secret
        self.tolerance_s = tolerance_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def accept(self, timestamp: str, body: bytes, signature: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if not verify_signature(self.secret, timestamp, body, signature, self.tolerance_s, now):
            return False
        try:
            nonce = json.loads(body)["nonce"]
        except (ValueError, KeyError, TypeError):
            return False
        if not isinstance(nonce, str) or not nonce:
            return False
        with self._lock:
            # A nonce older than twice the tolerance can no longer pass the timestamp check.
            self._seen = {n: t for n, t in self._seen.items() if now - t <= 2 * self.tolerance_s}
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
        return True


def post_signed(
    client: httpx.Client,
    url: str,
    secret: bytes,
    payload: dict[str, Any],
    *,
    event: str,
    retries: int,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """POST with a fresh signature per attempt; retry connection errors and 5xx/429 with backoff."""
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    last = ""
    for attempt in range(retries + 1):
        ts = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "user-agent": "facegate-webhook/1",
            "x-facegate-event": event,
            "x-facegate-timestamp": ts,
            "x-facegate-signature": sign(secret, ts, body),
        }
        wait = min(0.5 * 2**attempt, 30.0)
        try:
            r = client.post(url, content=body, headers=headers, timeout=timeout)
            if r.status_code < 300:
                return r
            last = f"HTTP {r.status_code}"
            if r.status_code not in RETRY_STATUS:
                break
            retry_after = r.headers.get("retry-after", "")
            if retry_after.isdigit():
                wait = min(float(retry_after), 30.0)
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if attempt < retries:
            sleep(wait)
    where = origin(url)
    raise DeliveryFailed(f"webhook {where}: {last.replace(url, where)} after {retries + 1} attempt(s)")


class WebhookSink:
    def __init__(self, settings: WebhookSettings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.name = f"webhook:{httpx.URL(settings.url).host}"
        self.client = client or httpx.Client()
        self.secret = settings.secret.get_secret_value().encode()

    def deliver(self, event: Event) -> None:
        if event.kind not in self.settings.kinds:
            return
        post_signed(
            self.client,
            self.settings.url,
            self.secret,
            event.to_dict(),
            event=event.kind,
            retries=self.settings.retries,
            timeout=self.settings.timeout_s,
        )

    def close(self) -> None:
        self.client.close()
