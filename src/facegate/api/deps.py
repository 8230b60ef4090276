"""What routes depend on: the calling key and its role, the rate limit, the thread pools, and
the app's state (`app.state`, filled by `create_app` and its lifespan).

A route declares what it needs (`key: Admin`, `gallery: GalleryDep`, `threads: ThreadsDep`);
none of these adds anything to the OpenAPI document but the security they enforce.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol, TypeVar, TypeVarTuple

import anyio
from fastapi import Depends, Request

from facegate.api.gate import authenticate
from facegate.api.keys import ApiKey, Role
from facegate.api.metrics import Metrics
from facegate.errors import BadImage, Forbidden, RequestTimeout
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
        self._request: Request | None = None

    def for_request(self, request: Request) -> Threads:
        """The same pools, watching this request's client: gone, its work is dropped."""
        bound = copy.copy(self)
        bound._request = request
        return bound

    async def _watch(self, scope: anyio.CancelScope) -> None:
        while self._request is not None:
            await anyio.sleep(0.2)
            if await self._request.is_disconnected():
                scope.cancel()
                return

    async def run_to_completion(self, fn: Callable[[*Args], T], *args: *Args) -> T:
        """Blocking work (writes included) off the event loop; runs to completion."""
        return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=self._limiter)

    async def run_with_deadline(self, fn: Callable[[*Args], T], *args: *Args) -> T:
        """A search or analysis that answers 504 after `api.request_timeout`.

        A call still waiting for a core when its request timed out (or was cancelled, its
        client gone) never starts: nobody is left to answer. One already running is abandoned,
        not killed; the semaphore, taken inside the thread, keeps the number of threads
        actually computing at one per core even then.
        """
        gone = threading.Event()
        # Checked by the clock as well as by `gone`: while the cores compute, the event loop
        # may set `gone` late, and a call whose time is up must not start in between.
        deadline = time.monotonic() + self.request_timeout

        def bounded() -> T:
            with self._running:
                if gone.is_set() or time.monotonic() >= deadline:
                    raise RequestTimeout("the request ended before its turn came")
                return fn(*args)

        done: list[T] = []
        failed: list[BaseException] = []

        async def call(scope: anyio.CancelScope) -> None:
            try:  # kept out of the task group, which would wrap it in an ExceptionGroup
                done.append(
                    await anyio.to_thread.run_sync(
                        bounded, limiter=self._waiting_room, abandon_on_cancel=True
                    )
                )
            except Exception as exc:
                failed.append(exc)
            scope.cancel()  # stop watching the client

        try:
            with anyio.fail_after(self.request_timeout):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._watch, tg.cancel_scope)
                    await call(tg.cancel_scope)
        except TimeoutError as exc:
            raise RequestTimeout(f"no answer within {self.request_timeout:g} s") from exc
        finally:
            gone.set()
        if failed:
            raise failed[0]
        if not done:  # the client went away: nobody will read an answer
            raise RequestTimeout("the client went away before the answer")
        return done[0]


# --- keys, roles and the rate limit --------------------------------------------------------------


def auth(*roles: Role) -> Callable[[Request], Awaitable[ApiKey]]:
    """A dependency: the request's API key (checked by the `Gate` before the body was read)
    if it is of one of `roles`."""

    async def check(request: Request) -> ApiKey:
        key: ApiKey | None = request.scope.get("state", {}).get("api_key")
        if key is None:  # an app mounted without its gate: check the key here
            key = await authenticate(
                request.app.state.keys, request.app.state.rate_limit, dict(request.scope["headers"])
            )
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


def _state(name: str) -> Callable[[Request], Any]:
    """A dependency that reads one attribute of `app.state`."""

    def read(request: Request) -> Any:
        return getattr(request.app.state, name)

    return read


def _threads(request: Request) -> Threads:
    threads: Threads = request.app.state.threads
    return threads.for_request(request)


def _privacy(request: Request) -> PrivacySettings:
    settings: Settings = request.app.state.settings
    return settings.privacy


GalleryDep = Annotated[Gallery, Depends(_state("gallery"))]
EventsDep = Annotated[EventStore, Depends(_state("events"))]
HistoryDep = Annotated[EventHistory, Depends(_state("history"))]
HubDep = Annotated[SseHub, Depends(_state("hub"))]
MetricsDep = Annotated[Metrics, Depends(_state("metrics"))]
ThreadsDep = Annotated[Threads, Depends(_threads)]
PrivacyDep = Annotated[PrivacySettings, Depends(_privacy)]
CamerasDep = Annotated[Cameras | None, Depends(_state("live"))]
