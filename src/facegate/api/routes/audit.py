"""The audit trail: its latest entries, and a check of its hash chain."""

from typing import Any

from fastapi import APIRouter

from facegate.api.deps import Auditor, GalleryDep, ThreadsDep

router = APIRouter(tags=["audit"])


@router.get("/v1/audit")
async def audit(
    key: Auditor, gallery: GalleryDep, threads: ThreadsDep, limit: int = 100, action: str | None = None
) -> dict[str, Any]:
    limit = max(1, min(limit, 1000))
    entries = await threads.run_to_completion(lambda: gallery.audit.entries(limit, action))
    return {"entries": [e.to_dict() for e in entries]}


@router.get("/v1/audit/verify")
async def audit_verify(key: Auditor, gallery: GalleryDep, threads: ThreadsDep) -> dict[str, Any]:
    c = await threads.run_to_completion(gallery.audit.verify)
    return {
        "ok": c.ok,
        "entries": c.entries,
        "head": c.head,
        "first_bad": c.first_bad,
        "reason": c.reason,
    }
