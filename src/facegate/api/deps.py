"""What routes depend on: the calling key and its role, the rate limit, the thread pools, and
the app's state (`app.state`, filled by `create_app` and its lifespan).

A route declares what it needs (`key: Admin`, `gallery: GalleryDep`, `threads: ThreadsDep`);
none of these adds anything to the OpenAPI document but the security they enforce.
"""

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Protocol, TypeVar, TypeVarTuple

import anyio
from fastapi import Depends, Request
from limits import parse as parse_limit
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from facegate.api.keys import ApiKey, KeyStore, Role
from facegate.api.metrics import Metrics
from facegate.errors import BadImage, ConfigError, Forbidden, RateLimited, RequestTimeout, Unauthorized
from facegate.events.history import EventHistory
from facegate.events.sse import SseHub
from facegate.events.store import EventStore
from facegate.gallery.gallery import Gallery
from facegate.settings import PrivacySettings, Settings

T = TypeVar("T")
Args = TypeVarTuple("Args")

# --- thread pools ------------------------------------------------------------------------------


class Threads:
    """Blocking calls off the event loop, in threads sized to the cores."""

    def __init__(self, cores: int, request_timeout: float) -> None:
        self.request_timeout = request_timeout
        self._limiter = anyio.CapacityLimiter(cores)
        self._waiting_room = anyio.CapacityLimiter(cores * 4)  # `_running` is the real cap
        self._running = threading.BoundedSemaphore(cores)

    async def run_to_completion(self, fn: Callable[[*Args], T], *args: *Args) -> T:
        """Blocking work (writes included) off the event loop; runs to completion."""
        return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=self._limiter)

    async def run_with_deadline(self, fn: Callable[[*Args], T], *args: *Args) -> T:
        """A search or analysis that answers 504 after `api.request_timeout`.

        Its thread is abandoned, not killed: the semaphore, taken inside the thread, keeps the
        number of threads actually computing at one per core even then.
        """

        def bounded() -> T:
            with self._running:
                return fn(*args)

        try:
            with anyio.fail_after(self.request_timeout):
                return await anyio.to_thread.run_sync(
                    bounded, limiter=self._waiting_room, abandon_on_cancel=True
                )
        except TimeoutError as exc:
            raise RequestTimeout(f"no answer within {self.request_timeout:g} s") from exc


# --- keys, roles and the rate limit --------------------------------------------------------------


class RateLimit:
    """Requests per API key in a moving window (`api.rate_limit`, e.g. "120/minute")."""

    def __init__(self, text: str) -> None:
        try:
            self.rate = parse_limit(text)
        except ValueError as exc:
            raise ConfigError(f"api.rate_limit {text!r}: {exc}") from exc
        self.text = text
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key_id: str) -> None:
        """Count a request of the key; `RateLimited` (with when to retry) over the limit."""
        if not self._limiter.hit(self.rate, key_id):
            reset = self._limiter.get_window_stats(self.rate, key_id).reset_time
            raise RateLimited(
                f"rate limit of {self.text} reached for this key",
                retry_after=max(1, int(reset - time.time()) + 1),
            )


def auth(*roles: Role) -> Callable[[Request], Awaitable[ApiKey]]:
    """A dependency: the request's API key, if known, within its rate limit and of one of `roles`."""

    async def check(request: Request) -> ApiKey:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        token = token or request.headers.get("x-api-key")
        if not token:
            raise Unauthorized("an API key is needed: Authorization: Bearer <key>")
        keys: KeyStore = request.app.state.keys
        key = await anyio.to_thread.run_sync(keys.authenticate, token)
        if key is None:
            raise Unauthorized("unknown or revoked API key")
        rate_limit: RateLimit = request.app.state.rate_limit
        rate_limit.hit(key.id)
        if key.role not in roles:
            raise Forbidden(
                f"role {key.role.value} may not do this (needs {', '.join(r.value for r in roles)})"
            )
        return key

    return check


Admin = Annotated[ApiKey, Depends(auth(Role.ADMIN))]
Operator = Annotated[ApiKey, Depends(auth(Role.OPERATOR, Role.DEVICE))]
Verifier = Annotated[ApiKey, Depends(auth(Role.OPERATOR))]
Auditor = Annotated[ApiKey, Depends(auth(Role.AUDITOR))]
# Reads events, their snapshots and the cameras' status.
Watcher = Annotated[ApiKey, Depends(auth(Role.ADMIN, Role.OPERATOR))]
# Submits events (a device key, for its own cameras only).
EventSource = Annotated[ApiKey, Depends(auth(Role.ADMIN, Role.DEVICE))]
MetricsReader = Annotated[ApiKey, Depends(auth(Role.ADMIN, Role.OPERATOR, Role.AUDITOR))]


async def reject_nul(request: Request) -> None:
    """Every route's: no NUL characters in path or query values (422)."""
    values = [*request.path_params.values(), *request.query_params.values()]
    if any("\x00" in str(v) for v in values):
        raise BadImage("path and query values must not contain NUL characters")


# --- the app's state ---------------------------------------------------------------------------


class Cameras(Protocol):
    """What the API reads of the live service (which only `facegate serve` starts)."""

    def status(self) -> list[dict[str, object]]: ...


def _gallery(request: Request) -> Gallery:
    gallery: Gallery = request.app.state.gallery
    return gallery


def _events(request: Request) -> EventStore:
    events: EventStore = request.app.state.events
    return events


def _history(request: Request) -> EventHistory:
    history: EventHistory = request.app.state.history
    return history


def _hub(request: Request) -> SseHub:
    hub: SseHub = request.app.state.hub
    return hub


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def _threads(request: Request) -> Threads:
    threads: Threads = request.app.state.threads
    return threads


def _privacy(request: Request) -> PrivacySettings:
    settings: Settings = request.app.state.settings
    return settings.privacy


def _cameras(request: Request) -> Cameras | None:
    live: Cameras | None = request.app.state.live
    return live


GalleryDep = Annotated[Gallery, Depends(_gallery)]
EventsDep = Annotated[EventStore, Depends(_events)]
HistoryDep = Annotated[EventHistory, Depends(_history)]
HubDep = Annotated[SseHub, Depends(_hub)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
ThreadsDep = Annotated[Threads, Depends(_threads)]
PrivacyDep = Annotated[PrivacySettings, Depends(_privacy)]
CamerasDep = Annotated[Cameras | None, Depends(_cameras)]
