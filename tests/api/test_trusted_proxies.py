"""`api.trusted_proxies`: behind a reverse proxy each client has its own address; the header is
honoured only from a listed proxy, and from anyone else (uvicorn's default trusts loopback) it
is ignored. A real `facegate serve`; the proxy is a client bound to another loopback address."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from facegate.settings import ApiSettings

from tests.api.test_server import Server

pytestmark = pytest.mark.api

PROXY = "127.0.0.2"  # Linux routes all of 127.0.0.0/8 to loopback: a second host on this machine


def _refused(client: httpx.Client, forwarded_for: str) -> int:
    """A request with a bad key, as a client behind the proxy would send it."""
    headers = {"Authorization": "Bearer fg_nope", "X-Forwarded-For": forwarded_for}
    return client.get("/v1/people", headers=headers).status_code


def test_forwarded_for_counts_only_from_a_listed_proxy(tmp_path: Path) -> None:
    server = Server(
        tmp_path / "data",
        FACEGATE_API__TRUSTED_PROXIES=f'["{PROXY}/32"]',
        FACEGATE_API__ANONYMOUS_RATE_LIMIT="3/minute",
    )
    server.start()
    try:
        proxy = httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address=PROXY))
        direct = httpx.Client(base_url=server.url)
        # Through the listed proxy: the client it names is limited, not the proxy.
        assert [_refused(proxy, "203.0.113.7") for _ in range(4)] == [401, 401, 401, 429]
        assert _refused(proxy, "203.0.113.8") == 401  # another client behind the same proxy
        # A client that forges a chain gets the address the proxy saw, the right-most one.
        assert _refused(proxy, "203.0.113.8, 203.0.113.7") == 429
        # Straight from 127.0.0.1, not listed: the header is ignored, whatever it claims, so
        # changing it each time does not escape the limit.
        assert [_refused(direct, f"198.51.100.{i}") for i in range(4)] == [401, 401, 401, 429]
    finally:
        server.stop()


def test_only_addresses_and_ranges_are_accepted() -> None:
    assert ApiSettings(trusted_proxies=[" 10.0.0.0/8", "::1"]).trusted_proxies == ["10.0.0.0/8", "::1"]
    for bad in ("*", "proxy.local", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="trusted_proxies"):
            ApiSettings(trusted_proxies=[bad])
