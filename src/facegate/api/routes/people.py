"""People: enrol, list, show, rename, add faces, erase, export (subject access)."""

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Response, UploadFile

from facegate.api.deps import Admin, GalleryDep, ThreadsDep
from facegate.api.schemas import PersonIn, PersonUpdate, decode_base64

router = APIRouter(tags=["people"])


@router.get("/v1/people")
async def list_people(key: Admin, gallery: GalleryDep, threads: ThreadsDep) -> dict[str, Any]:
    return {"people": [p.to_dict() for p in await threads.run_to_completion(gallery.people)]}


@router.get("/v1/people/{person_id}")
async def show_person(person_id: str, key: Admin, gallery: GalleryDep, threads: ThreadsDep) -> dict[str, Any]:
    person = await threads.run_to_completion(gallery.person, person_id)
    return dict(person.to_dict())


@router.patch("/v1/people/{person_id}")
async def update_person(
    person_id: str, body: PersonUpdate, key: Admin, gallery: GalleryDep, threads: ThreadsDep
) -> dict[str, Any]:
    p = await threads.run_to_completion(
        lambda: gallery.update_person(
            person_id, name=body.name, external_id=body.external_id, actor=f"key:{key.id}"
        )
    )
    return dict(p.to_dict())


@router.post("/v1/people", status_code=201)
async def create_person(
    body: PersonIn, key: Admin, gallery: GalleryDep, threads: ThreadsDep
) -> dict[str, Any]:
    consent = body.consent.to_consent()
    images = [decode_base64(i) for i in body.images_base64]
    result = await threads.run_to_completion(
        lambda: gallery.enroll(
            body.name,
            images,
            consent,
            external_id=body.external_id,
            actor=f"key:{key.id}",
            liveness=body.liveness,
        )
    )
    return dict(result.to_dict())


@router.post("/v1/people/{person_id}/faces", status_code=201)
async def add_faces(
    person_id: str,
    key: Admin,
    files: Annotated[list[UploadFile], File()],
    gallery: GalleryDep,
    threads: ThreadsDep,
    liveness: Annotated[bool, Query(description="Refuse photos judged presentation attacks (422)")] = False,
) -> dict[str, Any]:
    images = [await f.read() for f in files]
    person = await threads.run_to_completion(gallery.person, person_id)
    result = await threads.run_to_completion(
        lambda: gallery.enroll(
            person.name, images, None, person_id=person_id, actor=f"key:{key.id}", liveness=liveness
        )
    )
    return dict(result.to_dict())


@router.delete("/v1/people/{person_id}")
async def delete_person(
    person_id: str, key: Admin, gallery: GalleryDep, threads: ThreadsDep
) -> dict[str, Any]:
    """Erase the person and everything derived from them; answers with the erasure receipt."""
    from facegate.privacy.erasure import erase

    receipt = await threads.run_to_completion(lambda: erase(gallery, person_id, actor=f"key:{key.id}"))
    return {"deleted": person_id, **receipt.removed, "receipt": receipt.to_dict()}


@router.get("/v1/people/{person_id}/export", response_class=Response)
async def export_person(person_id: str, key: Admin, gallery: GalleryDep, threads: ThreadsDep) -> Response:
    """Subject access: a zip of everything held about the person, with a README."""
    import tempfile
    from pathlib import Path as FsPath

    from facegate.privacy.export import export_subject

    def build() -> bytes:
        with tempfile.TemporaryDirectory() as d:
            out = FsPath(d) / "export.zip"
            export_subject(gallery, person_id, out, actor=f"key:{key.id}")
            return out.read_bytes()

    data = await threads.run_to_completion(build)
    return Response(
        data,
        media_type="application/zip",
        headers={
            "content-disposition": f'attachment; filename="facegate-{person_id}.zip"',
            "cache-control": "private, no-store",
        },
    )
