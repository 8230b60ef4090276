"""Cameras in worker processes on real clips: a killed worker comes back by itself, one
camera's frames stay in order, and a live source behind a slow pipeline drops to the newest."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from facegate import Gallery, load_settings
from facegate.events.store import EventStore
from facegate.settings import CameraSettings
from facegate.video.pipeline import CameraPipeline, FrameResult
from facegate.video.service import LiveService
from facegate.video.sources import VideoSource

from tests.conftest import LIN, ROOT, SECRET, consent

pytestmark = [pytest.mark.integration, pytest.mark.video]

HAMILTON = ROOT / "tests" / "data" / "videos" / "hamilton_clip.mp4"


def wait_for(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def open_gallery(tmp_path: Path, engine, cameras: list[CameraSettings], **overrides) -> Gallery:  # type: ignore[no-untyped-def]
    from facegate import FaceEngine

    settings = load_settings(data_dir=tmp_path / "data", secret_key=SECRET, cameras=cameras, **overrides)
    engine = FaceEngine(settings, detector=engine.detector, aligner=engine.aligner, embedder=engine.embedder)
    return Gallery.open(settings, engine=engine)


def test_a_killed_worker_comes_back_and_frames_stay_in_order(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    cams = [CameraSettings(name=n, source=str(HAMILTON), fps=5) for n in ("stage", "wing")]
    g = open_gallery(tmp_path, engine, cams, camera_workers=2)  # a process each
    g.enroll("Lin-Manuel Miranda", [LIN], consent())
    live = LiveService(g, workers=True)
    assert live.workers is not None
    workers = live.workers
    live.start()
    try:
        stage = workers.cameras["stage"]
        wait_for(lambda: stage.frames >= 3, 120, "the first frames of a worker")
        pid = workers.pid("stage")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: stage.restarts == 1 and workers.pid("stage") != pid, 30, "the restart")
        before = stage.frames
        wait_for(lambda: stage.frames >= before + 3, 120, "frames after the restart")
        wait_for(lambda: all(c.state == "ended" for c in workers.cameras.values()), 180, "both clips to end")
    finally:
        live.stop()
    # In order end to end, the killed camera's second run from frame 0 again included.
    assert all(c.reordered == 0 for c in workers.cameras.values())
    assert workers.cameras["wing"].stats["frames"] == 46  # the other camera never noticed
    assert workers.cameras["stage"].stats["frames"] == 46  # the restarted run went through the clip
    events = EventStore(g.store).list(limit=1000)
    restarting = [e for e in events if e.kind == "camera_state" and e.details.get("state") == "restarting"]
    assert [e.camera for e in restarting] == ["stage"]
    granted = {e.camera for e in events if e.kind == "granted" and e.person_id is not None}
    assert granted == {"stage", "wing"}  # decisions made in the workers reached the server's store
    assert live.status()[0]["restarts"] == 1
    g.close()


def test_cameras_grouped_into_fewer_workers_share_one_and_restart_together(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    """`camera_workers: 2` with three cameras: two processes, the cameras dealt over them in
    turn; killing one restarts both of its cameras and not the third, and every camera's
    frames stay in order through it."""
    cams = [CameraSettings(name=n, source=str(HAMILTON), fps=5) for n in ("stage", "wing", "lobby")]
    g = open_gallery(tmp_path, engine, cams, camera_workers=2)
    g.enroll("Lin-Manuel Miranda", [LIN], consent())
    live = LiveService(g)  # worker mode from the setting
    assert live.workers is not None
    workers = live.workers
    assert [grp.cameras for grp in workers.groups] == [["stage", "lobby"], ["wing"]]
    live.start()
    try:
        # The first frames of "stage" only: "wing"'s process may start later on a busy machine.
        wait_for(lambda: workers.cameras["stage"].frames >= 3, 120, "the first frames of a group")
        pid = workers.pid("stage")
        assert pid is not None and pid == workers.pid("lobby") and workers.pid("wing") not in (pid, None)
        before = {n: c.frames for n, c in workers.cameras.items()}
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: workers.pid("stage") not in (pid, None), 30, "the restart")
        assert workers.pid("stage") == workers.pid("lobby")
        wait_for(
            lambda: all(workers.cameras[n].frames >= before[n] + 3 for n in ("stage", "lobby")),
            120,
            "frames after the restart",
        )
        wait_for(lambda: all(c.state == "ended" for c in workers.cameras.values()), 180, "the clips to end")
    finally:
        live.stop()
    assert {n: c.restarts for n, c in workers.cameras.items()} == {"stage": 1, "wing": 0, "lobby": 1}
    assert all(c.reordered == 0 for c in workers.cameras.values())
    assert {n: c.stats["frames"] for n, c in workers.cameras.items()} == {
        "stage": 46,
        "wing": 46,
        "lobby": 46,
    }
    events = EventStore(g.store).list(limit=1000)
    restarting = [e for e in events if e.kind == "camera_state" and e.details.get("state") == "restarting"]
    assert sorted(e.camera for e in restarting) == ["lobby", "stage"]
    granted = {e.camera for e in events if e.kind == "granted" and e.person_id is not None}
    assert granted == {"stage", "wing", "lobby"}
    g.close()


def test_auto_runs_as_many_worker_processes_as_cores(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    from facegate.vision.onnx_runtime import available_cores

    cams = [CameraSettings(name=f"cam{i}", source=str(HAMILTON), fps=5) for i in range(5)]
    g = open_gallery(tmp_path, engine, cams, camera_workers="auto")
    live = LiveService(g)
    try:
        assert live.workers is not None
        groups = [grp.cameras for grp in live.workers.groups]
        assert len(groups) == min(5, available_cores())
        assert sorted(n for grp in groups for n in grp) == [c.name for c in cams]  # each camera once
    finally:
        live.stop()
        g.close()


def test_a_failing_camera_restarts_alone_inside_its_group(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    """Two cameras in one worker process, one of them a file that is not there: that camera is
    started again with backoff inside the worker (`camera_state: restarting` each time) while
    the other processes its whole clip, and the process itself is never restarted."""
    missing = tmp_path / "gone.mp4"
    cams = [
        CameraSettings(name="stage", source=str(HAMILTON), fps=5),
        CameraSettings(name="broken", source=str(missing), fps=5),
    ]
    g = open_gallery(tmp_path, engine, cams, camera_workers=1)
    g.enroll("Lin-Manuel Miranda", [LIN], consent())
    live = LiveService(g)
    workers = live.workers
    assert workers is not None and len(workers.groups) == 1
    live.start()
    try:
        pid = workers.pid("stage")
        wait_for(lambda: workers.cameras["stage"].state == "ended", 180, "the good camera's clip to end")
        wait_for(lambda: workers.cameras["broken"].restarts >= 2, 30, "the broken camera's restarts")
        assert workers.pid("broken") == pid  # the same process throughout
        assert workers.cameras["broken"].state == "restarting"
    finally:
        live.stop()
    assert workers.cameras["stage"].stats["frames"] == 46 and workers.cameras["stage"].restarts == 0
    events = EventStore(g.store).list(limit=1000)
    restarting = [e for e in events if e.kind == "camera_state" and e.details.get("state") == "restarting"]
    assert {e.camera for e in restarting} == {"broken"} and len(restarting) >= 2
    assert "no such video file" in restarting[0].details["reason"]
    assert any(e.kind == "granted" and e.camera == "stage" for e in events)
    g.close()


def test_a_slow_pipeline_on_a_live_source_drops_to_the_newest_and_counts(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    cam = CameraSettings(name="slow", source=str(HAMILTON), fps=60)
    g = open_gallery(tmp_path, engine, [cam])
    seen: list[int] = []

    def slow(r: FrameResult) -> None:
        seen.append(r.frame.index)
        time.sleep(0.1)  # a pipeline much slower than the decoder

    p = CameraPipeline(cam, g, on_frame=slow)
    # A file read as a live stream: its reader decodes as fast as it can, whatever we take.
    source: VideoSource = p.source(live=True, max_reconnects=0)
    stats = p.run(source)
    g.close()
    assert stats.decoded == 275
    assert stats.skipped > 0 and stats.frames == len(seen)
    assert stats.frames + stats.skipped == stats.decoded  # every decoded frame processed or counted
    assert seen == sorted(set(seen)) and seen[-1] - seen[0] + 1 > len(seen)  # newer frames, in order
