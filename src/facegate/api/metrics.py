"""Prometheus metrics of the REST service: requests, latency, faces processed, the index."""

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can coexist)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "facegate_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "facegate_request_seconds", "HTTP request latency", ["method", "route"], registry=r
        )
        self.faces = Counter("facegate_faces_processed", "Faces detected or identified", ["kind"], registry=r)
        self.templates = Gauge("facegate_index_templates", "Templates in the search index", registry=r)
        self.model_load = Gauge(
            "facegate_model_load_seconds", "Time taken to load the face models", registry=r
        )

    def render(self) -> bytes:
        out: bytes = generate_latest(self.registry)
        return out


async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """HTTP middleware: count each request and time it, by method, route template and status."""
    metrics: Metrics = request.app.state.metrics
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", "unmatched")
    metrics.requests.labels(request.method, path, str(response.status_code)).inc()
    metrics.latency.labels(request.method, path).observe(time.perf_counter() - started)
    return response
