"""Consent records of a person: list, add (or renew), withdraw."""

from typing import Annotated, Any

from fastapi import APIRouter, Path

from facegate.api.deps import Admin, GalleryDep, ThreadsDep
from facegate.api.schemas import ConsentIn

router = APIRouter(tags=["consent"])


@router.get("/v1/people/{person_id}/consents")
async def list_consents(
    person_id: str, key: Admin, gallery: GalleryDep, threads: ThreadsDep
) -> dict[str, Any]:
    await threads.run_to_completion(gallery.person, person_id)
    records = await threads.run_to_completion(gallery.store.consents, person_id)
    return {"consents": [{"id": c.id, **c.to_dict()} for c in records]}


@router.post("/v1/people/{person_id}/consents", status_code=201)
async def add_consent(
    person_id: str, body: ConsentIn, key: Admin, gallery: GalleryDep, threads: ThreadsDep
) -> dict[str, Any]:
    consent = body.to_consent()
    p = await threads.run_to_completion(
        lambda: gallery.add_consent(person_id, consent, actor=f"key:{key.id}")
    )
    return dict(p.to_dict())


@router.post("/v1/people/{person_id}/consents/{consent_id}/withdraw")
async def withdraw_consent(
    person_id: str,
    consent_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    key: Admin,
    gallery: GalleryDep,
    threads: ThreadsDep,
) -> dict[str, Any]:
    """The person stops matching at once; the purge destroys their templates after the grace period."""
    withdrawn = await threads.run_to_completion(
        lambda: gallery.withdraw_consent(person_id, consent_id, actor=f"key:{key.id}")
    )
    person = await threads.run_to_completion(gallery.person, person_id)
    return {"withdrawn": withdrawn, "person": person.to_dict()}
