"""Audit and privacy (auditors and admins): the trail with its chain check, the retention
schedule, a purge dry run, and the reports `facegate eval` wrote."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from facegate.errors import SnapshotNotFound
from facegate.gallery.gallery import Gallery
from facegate.web.auth import AuditUser, ConsoleRoute, console_of

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

REPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")
# An evaluation report's own page: its inline style and plots, nothing else, in a sandbox.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"


@router.get("/audit")
async def audit_page(
    request: Request,
    viewer: AuditUser,
    action: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    from facegate.privacy.retention import schedule

    g: Gallery = request.app.state.gallery

    def read() -> tuple[Any, Any]:
        return g.audit.entries(limit, action.strip() or None), g.audit.verify()

    entries, check = await request.app.state.threads.run_to_completion(read)
    return console_of(request).page(
        request,
        "audit.html",
        entries=entries,
        check=check,
        action=action,
        retention=schedule(g.settings.privacy),
    )


@router.post("/audit/purge-dry-run")
async def purge_dry_run(request: Request, viewer: AuditUser) -> Response:
    """What the retention purge would remove now; removes nothing."""
    from facegate.privacy.retention import purge

    g: Gallery = request.app.state.gallery
    report = await request.app.state.threads.run_to_completion(
        lambda: purge(g, g.settings.privacy, dry_run=True, actor=viewer.actor)
    )
    return console_of(request).page(request, "purge.html", report=report.to_dict(), total=report.total)


def _reports_dir(request: Request) -> Path:
    return Path(request.app.state.settings.data_dir) / "reports"


def _reports(root: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(root.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            title = json.loads(path.read_text()).get("title", path.stem)
        except (OSError, ValueError, AttributeError):
            continue
        out.append({"name": path.stem, "title": str(title), "html": path.with_suffix(".html").exists()})
    return out


@router.get("/evals")
async def evals(request: Request, viewer: AuditUser) -> Response:
    found = await request.app.state.threads.run_to_completion(_reports, _reports_dir(request))
    return console_of(request).page(request, "evals.html", reports=found)


def _report_path(request: Request, name: str, suffix: str) -> Path:
    path = _reports_dir(request) / f"{name}{suffix}"
    if not REPORT_NAME.match(name) or not path.is_file():
        raise SnapshotNotFound(f"no evaluation report named {name!r}")
    return path


@router.get("/evals/{name}")
async def eval_report(request: Request, viewer: AuditUser, name: str) -> Response:
    if name.endswith(".html"):
        path = _report_path(request, name.removesuffix(".html"), ".html")
        return Response(
            path.read_bytes(), media_type="text/html", headers={"content-security-policy": REPORT_CSP}
        )
    data = json.loads(_report_path(request, name, ".json").read_text())
    return console_of(request).page(request, "report.html", name=name, report=data)
