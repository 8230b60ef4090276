"""`liveness` over HTTP: enrolment and 1:1 refuse photos judged presentation attacks (422)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.api.test_api import api, person_body  # noqa: F401 - the fixture
from tests.conftest import SHARED, need

pytestmark = [pytest.mark.api, pytest.mark.shared]

NUAA = SHARED / "pad" / "nuaa_train"


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_liveness_refuses_attack_photos_over_http(api) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    need(None if (NUAA / "labels.csv").is_file() else f"{NUAA} (NUAA frames) is not there")
    client, h, gallery = api
    attack = NUAA / "attack" / "0005_0005_00_00_01_104.jpg"
    real = NUAA / "real" / "0005_0005_00_00_01_7.jpg"
    r = client.post(
        "/v1/people", json={**person_body("Resident", attack), "liveness": True}, headers=h["admin"]
    )
    assert r.status_code == 422 and r.json()["code"] == "presentation_attack", r.text
    assert len(gallery) == 0
    r = client.post(
        "/v1/people", json={**person_body("Resident", real), "liveness": True}, headers=h["admin"]
    )
    assert r.status_code == 201, r.text
    pid = r.json()["person"]["id"]
    with attack.open("rb") as fh:
        r = client.post(
            f"/v1/people/{pid}/faces?liveness=true",
            files=[("files", ("a.jpg", fh, "image/jpeg"))],
            headers=h["admin"],
        )
    assert r.status_code == 422 and r.json()["code"] == "presentation_attack"
    body = {"image_base64": b64(attack), "person_id": pid, "liveness": True}
    r = client.post("/v1/verify", json=body, headers=h["operator"])
    assert r.status_code == 422 and r.json()["code"] == "presentation_attack"
    r = client.post("/v1/verify", json={**body, "liveness": False}, headers=h["operator"])
    assert r.status_code == 200 and r.json()["same_person"]
