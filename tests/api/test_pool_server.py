"""`facegate serve` with its vision workers: the answers and errors of the in-process service,
workers that are the server's children and end with it, whether it is stopped or killed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from facegate.errors import BadImage, ImageTooLarge
from facegate.vision.engine import FaceEngine

from tests.api.test_server import Server, _body
from tests.conftest import LFW, OBAMA, PROBES
from tests.unit.test_decode import png_bomb

pytestmark = pytest.mark.api


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(c) for c in (task / "children").read_text().split()]
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_gone(pids: list[int], within: float) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _start(tmp_path: Path) -> Server:
    server = Server(tmp_path / "data")
    server.env["FACEGATE_WORKERS__PROCESSES"] = "2"
    server.start()
    return server


def _workers(server: Server) -> list[int]:
    assert server.proc is not None
    # The pool's workers, and the resource tracker multiprocessing starts beside them.
    kids = _children(server.proc.pid)
    assert len(kids) >= 2, kids
    return kids


def test_pooled_serve_answers_like_in_process_and_stops_its_workers(
    tmp_path: Path, engine: FaceEngine
) -> None:
    server = _start(tmp_path)
    try:
        workers = _workers(server)
        with httpx.Client(base_url=server.url, timeout=60) as c:
            r = c.post(
                "/v1/people", json=_body("Hugh Grant", LFW / "Hugh_Grant_0001.jpg"), headers=server.admin
            )
            assert r.status_code == 201, r.text
            pid = r.json()["person"]["id"]
            probe = LFW / "Hugh_Grant_0002.jpg"
            r = c.post(
                "/v1/identify", files={"file": (probe.name, probe.read_bytes())}, headers=server.operator
            )
            assert r.status_code == 200, r.text
            [face] = r.json()["faces"]
            assert face["decision"] == "match" and face["person"]["person_id"] == pid
            # The score is the in-process engine's, to the rounding of the answer.
            a = engine.largest_face(probe).embedding
            b = engine.enrolment_face(LFW / "Hugh_Grant_0001.jpg").embedding
            assert a is not None and b is not None
            assert face["candidates"][0]["score"] == pytest.approx(float(a @ b), abs=1e-3)
            two = c.post(
                "/v1/identify",
                files={"file": ("two.jpg", (PROBES / "two_people.jpg").read_bytes())},
                headers=server.operator,
            )
            assert two.status_code == 200 and len(two.json()["faces"]) == 2
            # Bad images: the same status and code as the in-process engine raises.
            data = OBAMA.read_bytes()
            for name, payload in {"text": b"not an image", "truncated": data[: len(data) // 3]}.items():
                with pytest.raises(BadImage) as expected:
                    engine.analyse(payload)
                r = c.post("/v1/identify", files={"file": (f"{name}.jpg", payload)}, headers=server.operator)
                assert r.status_code == expected.value.http_status, (name, r.text)
                assert r.json()["code"] == expected.value.code
            bomb = png_bomb(30000, 30000)
            with pytest.raises((BadImage, ImageTooLarge)) as expected_bomb:
                engine.analyse(bomb)
            r = c.post("/v1/identify", files={"file": ("x.png", bomb)}, headers=server.operator)
            assert r.status_code == expected_bomb.value.http_status
            assert r.json()["code"] == expected_bomb.value.code
            r = c.post("/v1/people", json=_body("Two", PROBES / "two_people.jpg"), headers=server.admin)
            assert r.status_code == 422 and r.json()["code"] == "too_many_faces"
            assert len(c.get("/v1/people", headers=server.admin).json()["people"]) == 1
        assert all(_alive(w) for w in workers)
    finally:
        server.stop(signal.SIGTERM)
    assert server.proc is not None and server.proc.returncode is not None
    assert _wait_gone(workers, 5.0) == [], "workers outlived `facegate serve`"


def test_workers_of_a_killed_server_exit(tmp_path: Path) -> None:
    server = _start(tmp_path)
    workers = _workers(server)
    server.stop(signal.SIGKILL)  # no chance to shut the pool down
    assert _wait_gone(workers, 10.0) == [], "workers orphaned by a killed server"
