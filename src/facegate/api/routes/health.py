"""Health: liveness and readiness (open to all), Prometheus metrics."""

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from facegate.api.deps import GalleryDep, MetricsDep, MetricsReader

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(gallery: GalleryDep) -> dict[str, Any]:
    # Depending on the gallery is the check: it is open and its index rebuilt (the lifespan
    # did both).
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
async def prometheus(key: MetricsReader, gallery: GalleryDep, metrics: MetricsDep) -> Response:
    metrics.templates.set(len(gallery))
    metrics.model_load.set(gallery.engine.load_seconds)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
