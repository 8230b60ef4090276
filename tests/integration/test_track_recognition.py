"""Recognition per track, not per frame: far fewer embeddings, the same door decisions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from facegate.settings import CameraSettings
from facegate.video.pipeline import CameraPipeline, FrameResult

from tests.conftest import ALEX, LIN, consent
from tests.integration.test_video import HAMILTON, MALE, PAIR, first_frame, open_gallery, stage_door

pytestmark = [pytest.mark.integration, pytest.mark.video]

# Every face of every frame embedded: the behaviour before recognition per track.
PER_FRAME = {"reembed_s": 1e-6, "hurry_s": 1e-6, "decided_reembed_s": 1e-6}


def watch(tmp_path: Path, engine, clip: Path, fps: float, tracking: dict[str, float], enrol) -> dict:  # type: ignore[no-untyped-def]
    g = open_gallery(tmp_path, engine, quality={"min_face_px": 60}, tracking=tracking)
    enrol(g)
    sightings: Counter[int] = Counter()
    embedded: dict[int, int] = {}

    def on_frame(r: FrameResult) -> None:
        for t in r.tracks.values():
            sightings[t.id] += 1
            embedded[t.id] = t.embeddings

    door = stage_door(None) if clip == HAMILTON else None
    camera = CameraSettings(name="stage", source=str(clip), fps=fps)
    stats = CameraPipeline(camera, g, door=door, on_frame=on_frame).run()
    g.close()
    return {
        "frames": stats.frames,
        "decisions": Counter((d.kind, d.name) for d in stats.decisions),
        "sightings": sightings,
        "embedded": embedded,
    }


def hamilton_cast(g) -> None:  # type: ignore[no-untyped-def]
    g.enroll("Lin-Manuel Miranda", [LIN], consent())
    g.enroll("Alex Lacamoire", [ALEX], consent())


def the_man(g) -> None:  # type: ignore[no-untyped-def]
    g.enroll("Man", [first_frame(MALE)], consent())


@pytest.mark.parametrize(
    ("clip", "fps", "enrol"), [(HAMILTON, 15, hamilton_cast), (MALE, 30, the_man), (PAIR, 30, the_man)]
)
def test_tracks_embedded_far_less_than_seen_with_the_same_decisions(
    tmp_path: Path, engine, clip, fps, enrol
) -> None:  # type: ignore[no-untyped-def]
    per_track = watch(tmp_path / "track", engine, clip, fps, {}, enrol)
    per_frame = watch(tmp_path / "frame", engine, clip, fps, PER_FRAME, enrol)
    assert per_track["frames"] == per_frame["frames"] > 20
    # Embedding every frame, every sighting is embedded (the comparison is real) ...
    assert sum(per_frame["embedded"].values()) >= 0.95 * sum(per_frame["sightings"].values())
    # ... per track, a face seen for a second or more is embedded on a small share of its frames.
    long = [t for t, n in per_track["sightings"].items() if n >= fps]
    assert long
    for t in long:
        assert per_track["embedded"][t] <= per_track["sightings"][t] / 4, (t, per_track["sightings"][t])
    assert sum(per_track["embedded"].values()) <= sum(per_track["sightings"].values()) / 4
    # The door decides the same: who is granted, how many unknowns.
    assert per_track["decisions"] == per_frame["decisions"]
    assert any(kind == "granted" for kind, _ in per_track["decisions"])
