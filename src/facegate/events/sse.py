"""Server-sent events: live views subscribe to the bus through bounded per-client queues."""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
from collections.abc import AsyncIterator
from typing import Any

from facegate.events.store import Event

_FIELD_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def sse_message(event: Event) -> str:
    """One event as an SSE message. The event name is reduced to safe characters (a newline
    would start a forged field) and the data is strict JSON on one line (no NaN)."""
    name = _FIELD_UNSAFE.sub("_", event.kind)[:64] or "event"
    data = json.dumps(_finite(event.to_dict()), default=str, allow_nan=False)
    return f"id: {event.id}\nevent: {name}\ndata: {data}\n\n"


class SseHub:
    """An event sink that fans events out to connected browsers (slow clients lose events)."""

    name = "sse"

    def __init__(self, per_client: int = 100) -> None:
        self.per_client = per_client
        self._clients: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Event]]] = set()
        self._lock = threading.Lock()
        self.dropped = 0

    def subscribe(self) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(self.per_client)
        with self._lock:
            self._clients.add((asyncio.get_running_loop(), q))
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        with self._lock:
            self._clients = {(loop, c) for loop, c in self._clients if c is not q}

    @property
    def clients(self) -> int:
        return len(self._clients)

    def _offer(self, q: asyncio.Queue[Event], event: Event) -> None:
        try:
            q.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def deliver(self, event: Event) -> None:
        with self._lock:
            clients = list(self._clients)
        for loop, q in clients:
            try:
                loop.call_soon_threadsafe(self._offer, q, event)
            except RuntimeError:  # that client's event loop closed meanwhile
                self.unsubscribe(q)

    async def frames(
        self,
        queue: asyncio.Queue[Event],
        *,
        camera: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[str]:
        """The events reaching `queue` (subscribed beforehand, so none is missed meanwhile) as
        server-sent event frames, `event: <kind>` with their JSON, those of `camera` and `kind`
        only, until `limit` were sent. Unsubscribes the queue when done or abandoned."""
        sent = 0
        try:
            yield ": connected\n\n"
            while limit is None or sent < limit:
                try:
                    event: Event = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    yield ": keep-alive\n\n"  # proxies close idle connections
                    continue
                if (camera and event.camera != camera) or (kind and event.kind != kind):
                    continue
                yield sse_message(event)
                sent += 1
        finally:
            self.unsubscribe(queue)

    def close(self) -> None:
        with self._lock:
            self._clients.clear()
