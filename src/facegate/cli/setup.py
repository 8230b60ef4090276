"""`facegate init`: make the gallery where the settings point, and say where."""

from __future__ import annotations

from facegate.cli.common import JsonOpt, emit, handled, open_gallery, out, settings


def init(as_json: JsonOpt = False) -> None:
    """Create the gallery (database and data key) where FACEGATE_DATA_DIR and
    FACEGATE_DATABASE_URL point, and say where. One already there is left as it is. Other
    commands than enrolment and `serve` need a gallery made first."""
    with handled(as_json), open_gallery(create=True) as gallery:
        payload = {
            "created": gallery.created,
            "database": gallery.store.location,
            "data_dir": str(settings().data_dir),
            "key_file": str(gallery.key_file) if gallery.key_file else None,
        }

        def human() -> None:
            if not gallery.created:
                out.print(f"a gallery is already there: {gallery.store.location}", highlight=False)

        emit(as_json, payload, human)
