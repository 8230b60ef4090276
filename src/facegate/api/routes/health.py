"""Health: liveness and readiness (open to all), Prometheus metrics."""

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from facegate.api.deps import GalleryDep, MetricsDep, MetricsReader, ThreadsDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The database is away, or the data key changed"}})
async def readyz(gallery: GalleryDep, threads: ThreadsDep) -> dict[str, Any]:
    """Ready: the gallery is open with its index (the lifespan did both), the database answers
    and still opens with this process's data key (503 problem+json otherwise)."""
    await threads.run_to_completion(gallery.check_ready)
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
async def prometheus(key: MetricsReader, gallery: GalleryDep, metrics: MetricsDep) -> Response:
    metrics.templates.set(len(gallery))
    metrics.model_load.set(gallery.engine.load_seconds)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
