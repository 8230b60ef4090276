"""Privacy: the retention schedule in force, and the purge that applies it."""

from typing import Any

from fastapi import APIRouter

from facegate.api.deps import Admin, GalleryDep, PrivacyDep, ThreadsDep

router = APIRouter(tags=["privacy"])


@router.get("/v1/privacy/policy")
async def privacy_policy(privacy: PrivacyDep) -> dict[str, Any]:
    """The retention schedule in force (public: it is what the operator publishes)."""
    from facegate.privacy.retention import schedule

    return {"retention": [r.to_dict() for r in schedule(privacy)]}


@router.post("/v1/privacy/purge")
async def privacy_purge(
    key: Admin, gallery: GalleryDep, privacy: PrivacyDep, threads: ThreadsDep, dry_run: bool = True
) -> dict[str, Any]:
    """Apply the retention policy now (or, by default, only count what it would remove)."""
    from facegate.privacy.retention import purge

    report = await threads.run_to_completion(
        lambda: purge(gallery, privacy, dry_run=dry_run, actor=f"key:{key.id}")
    )
    return dict(report.to_dict())
