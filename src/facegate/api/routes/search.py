"""Search and analysis: who is in a photo, is it the same person, where are the faces."""

from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile

from facegate.api.deps import GalleryDep, MetricsDep, Operator, Threads, ThreadsDep, Verifier
from facegate.api.keys import ApiKey
from facegate.api.metrics import Metrics
from facegate.api.schemas import ImageIn, VerifyIn, decode_base64
from facegate.errors import BadImage
from facegate.gallery.gallery import Gallery

router = APIRouter(tags=["search"])


@router.post("/v1/identify")
async def identify(
    key: Operator,
    file: Annotated[UploadFile, File()],
    gallery: GalleryDep,
    threads: ThreadsDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    return await _identify(await file.read(), key, gallery, threads, metrics)


@router.post("/v1/identify/base64")
async def identify_b64(
    body: ImageIn, key: Operator, gallery: GalleryDep, threads: ThreadsDep, metrics: MetricsDep
) -> dict[str, Any]:
    return await _identify(decode_base64(body.image_base64), key, gallery, threads, metrics)


@router.post("/v1/verify")
async def verify(body: VerifyIn, key: Verifier, gallery: GalleryDep, threads: ThreadsDep) -> dict[str, Any]:
    image = decode_base64(body.image_base64)
    if (body.other_base64 is None) == (body.person_id is None):
        raise BadImage("give either other_base64 or person_id")
    if body.person_id is not None:
        pid = body.person_id
        result = await threads.run_with_deadline(
            lambda: gallery.verify_person(image, pid, actor=f"key:{key.id}", liveness=body.liveness)
        )
    else:
        other = decode_base64(body.other_base64 or "")
        result = await threads.run_with_deadline(
            lambda: gallery.verify_photos(image, other, actor=f"key:{key.id}", liveness=body.liveness)
        )
    return dict(result.to_dict())


@router.post("/v1/detect")
async def detect(
    key: Operator,
    file: Annotated[UploadFile, File()],
    gallery: GalleryDep,
    threads: ThreadsDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    data = await file.read()
    result = await threads.run_with_deadline(gallery.engine.detect, data)
    metrics.faces.labels("detect").inc(len(result.faces))
    return {"width": result.width, "height": result.height, "faces": [f.to_dict() for f in result.faces]}


async def _identify(
    data: bytes, key: ApiKey, gallery: Gallery, threads: Threads, metrics: Metrics
) -> dict[str, Any]:
    faces = await threads.run_with_deadline(lambda: gallery.identify(data, actor=f"key:{key.id}"))
    metrics.faces.labels("identify").inc(len(faces))
    threshold = gallery.threshold
    return {"faces": [f.disclosed(threshold) for f in faces], "threshold": threshold}
