"""People (admins only): the list, a person's page, enrolment with consent, photos, consent
renewal and withdrawal, subject access export, erasure with its receipt.

Each action calls the same gallery and privacy functions as the REST API's routes.
"""

from __future__ import annotations

import io
import re
import tempfile
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import RedirectResponse
from PIL import Image

from facegate.api.schemas import MAX_IMAGES
from facegate.errors import BadRequest, PersonNotFound
from facegate.gallery.enrolment import Enrolment
from facegate.gallery.gallery import Gallery
from facegate.gallery.people import Consent
from facegate.web.auth import AdminUser, ConsoleRoute, Viewer, console_of

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

Text = Annotated[str, Form(max_length=2000)]
PAGE_SIZE = 500  # people listed at once; a search narrows the rest
Photos = Annotated[list[UploadFile], File()]


def _gallery(request: Request) -> Gallery:
    g: Gallery = request.app.state.gallery
    return g


async def _run(request: Request, fn: Any, *args: Any) -> Any:
    return await request.app.state.threads.run_to_completion(fn, *args)


def consent_from_form(
    purpose: str, expires: str, recorded_by: str, evidence_ref: str, scope: str, subject_name: str | None
) -> Consent:
    """The consent record a form describes (its checks are `Consent.check`'s, at enrolment)."""
    try:
        day = date.fromisoformat(expires.strip())
    except ValueError as exc:
        raise BadRequest("the consent's expiry must be a date (YYYY-MM-DD)") from exc
    uses = tuple(u for u in re.split(r"[,\s]+", scope.strip()) if u) or ("*",)
    return Consent(
        purpose=purpose.strip(),
        expires_at=datetime.combine(day, time(23, 59, 59), UTC),
        recorded_by=recorded_by.strip(),
        evidence_ref=evidence_ref.strip() or None,
        subject_name=subject_name,
        scope=uses,
    )


async def _read_photos(photos: list[UploadFile]) -> tuple[list[bytes], list[str]]:
    if len(photos) > MAX_IMAGES:
        raise BadRequest(f"at most {MAX_IMAGES} photos at once ({len(photos)} were chosen)")
    data, names = [], []
    for i, f in enumerate(photos):
        body = await f.read()
        if body:
            data.append(body)
            names.append(f.filename or f"photo {i + 1}")
    if not data:
        raise BadRequest("choose at least one photo")
    return data, names


def _refusals(result: Enrolment, names: list[str]) -> list[dict[str, str]]:
    """Why each refused photo was refused, by the name it was uploaded under."""
    out = []
    for r in result.refused:
        m = re.fullmatch(r"image\[(\d+)\]", r.source)
        source = names[int(m.group(1))] if m and int(m.group(1)) < len(names) else r.source
        out.append({"photo": source, "code": r.error.code, "why": r.error.message})
    return out


@router.get("/people")
async def people_list(request: Request, viewer: AdminUser, q: str = "") -> Response:
    people = await _run(request, _gallery(request).people)
    needle = q.strip().casefold()
    if needle:  # by part of the name or the external id, any case
        people = [
            p for p in people if needle in p.name.casefold() or needle in (p.external_id or "").casefold()
        ]
    return console_of(request).page(
        request, "people.html", people=people[:PAGE_SIZE], total=len(people), q=q, page_size=PAGE_SIZE
    )


@router.get("/people/new")
async def enrol_page(request: Request, viewer: AdminUser) -> Response:
    return console_of(request).page(request, "enrol.html")


@router.post("/people/new")
async def enrol(
    request: Request,
    viewer: AdminUser,
    name: Annotated[str, Form(max_length=200)],
    purpose: Text,
    expires: Annotated[str, Form(max_length=20)],
    recorded_by: Annotated[str, Form(max_length=200)],
    photos: Photos,
    evidence_ref: Text = "",
    external_id: Annotated[str, Form(max_length=200)] = "",
    scope: Text = "*",
) -> Response:
    consent = consent_from_form(purpose, expires, recorded_by, evidence_ref, scope, None)
    data, names = await _read_photos(photos)
    g = _gallery(request)
    result: Enrolment = await _run(
        request,
        lambda: g.enroll(
            name, data, consent, external_id=external_id.strip() or None, skip_bad=True, actor=viewer.actor
        ),
    )
    return _after_enrolment(request, viewer, result, names)


def _after_enrolment(request: Request, viewer: Viewer, result: Enrolment, names: list[str]) -> Response:
    """To the person's page, which shows what was enrolled and why any photo was refused."""
    console_of(request).flash(
        viewer.session.token,
        {
            "added": len(result.template_ids),
            "refused": _refusals(result, names),
            "duplicates": len(result.duplicates),
        },
    )
    return RedirectResponse(f"/people/{result.person.id}", 303)


@router.get("/people/{person_id}")
async def person_page(request: Request, viewer: AdminUser, person_id: str) -> Response:
    g = _gallery(request)
    person = await _run(request, g.person, person_id)
    templates = await _run(request, g.templates, person_id)
    consents = await _run(request, g.consents, person_id)
    flash = console_of(request).take_flash(viewer.session.token)
    return console_of(request).page(
        request,
        "person.html",
        person=person,
        templates=templates,
        consents=sorted(consents, key=lambda c: c.given_at, reverse=True),
        quality=g.settings.quality,
        added=flash.get("added"),
        refused=flash.get("refused", []),
        duplicates=flash.get("duplicates", 0),
    )


@router.get("/people/{person_id}/photos/{template_id}.jpg")
async def photo(request: Request, viewer: AdminUser, person_id: str, template_id: int) -> Response:
    """An enrolment face image, decrypted for an admin (audited)."""
    g = _gallery(request)

    def read() -> bytes:
        if template_id not in {t.id for t in g.templates(person_id)}:
            raise PersonNotFound(f"{person_id} has no photo {template_id}")
        chip = g.face_chip(template_id)
        if chip is None:
            raise PersonNotFound(f"no face image is kept for photo {template_id}")
        g.audit.record(viewer.actor, "face_image_read", None, {"template": template_id}, person=person_id)
        buf = io.BytesIO()
        Image.fromarray(chip).save(buf, "JPEG", quality=90)
        return buf.getvalue()

    return Response(await _run(request, read), media_type="image/jpeg")


@router.post("/people/{person_id}/photos")
async def add_photos(request: Request, viewer: AdminUser, person_id: str, photos: Photos) -> Response:
    data, names = await _read_photos(photos)
    g = _gallery(request)
    person = await _run(request, g.person, person_id)
    result = await _run(
        request,
        lambda: g.enroll(person.name, data, None, person_id=person_id, skip_bad=True, actor=viewer.actor),
    )
    return _after_enrolment(request, viewer, result, names)


@router.post("/people/{person_id}/consents")
async def renew_consent(
    request: Request,
    viewer: AdminUser,
    person_id: str,
    purpose: Text,
    expires: Annotated[str, Form(max_length=20)],
    recorded_by: Annotated[str, Form(max_length=200)],
    evidence_ref: Text = "",
    scope: Text = "*",
) -> Response:
    g = _gallery(request)
    person = await _run(request, g.person, person_id)
    consent = consent_from_form(purpose, expires, recorded_by, evidence_ref, scope, person.name)
    await _run(request, lambda: g.add_consent(person_id, consent, actor=viewer.actor))
    return RedirectResponse(f"/people/{person_id}", 303)


@router.post("/people/{person_id}/consents/{consent_id}/withdraw")
async def withdraw(request: Request, viewer: AdminUser, person_id: str, consent_id: int) -> Response:
    g = _gallery(request)
    await _run(request, lambda: g.withdraw_consent(person_id, consent_id, actor=viewer.actor))
    return RedirectResponse(f"/people/{person_id}", 303)


@router.post("/people/{person_id}/export")
async def export(request: Request, viewer: AdminUser, person_id: str) -> Response:
    """Subject access: the same zip as `GET /v1/people/{id}/export`."""
    from facegate.privacy.export import export_subject

    g = _gallery(request)

    def build() -> bytes:
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "export.zip"
            export_subject(g, person_id, out, actor=viewer.actor)
            return out.read_bytes()

    return Response(
        await _run(request, build),
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="facegate-{person_id}.zip"'},
    )


@router.get("/people/{person_id}/erase")
async def erase_page(request: Request, viewer: AdminUser, person_id: str) -> Response:
    person = await _run(request, _gallery(request).person, person_id)
    return console_of(request).page(request, "erase.html", person=person)


@router.post("/people/{person_id}/erase")
async def erase_person(
    request: Request, viewer: AdminUser, person_id: str, confirm: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    from facegate.privacy.erasure import erase

    g = _gallery(request)
    person = await _run(request, g.person, person_id)
    if confirm.strip() != person.name:
        return console_of(request).page(
            request, "erase.html", 422, person=person, message="Type the person's name exactly to confirm."
        )
    receipt = await _run(request, lambda: erase(g, person_id, actor=viewer.actor))
    return console_of(request).page(request, "receipt.html", receipt=receipt.to_dict(), name=person.name)
