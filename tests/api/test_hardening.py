"""What a device, an operator or a stranger can see and forge over HTTP (issue 11's review)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.test_api import api, b64, person_body  # noqa: F401  (api is a fixture)
from tests.conftest import BIDEN, OBAMA, PROBES

pytestmark = pytest.mark.api


def _consent(scope: list[str], days: int = 400) -> dict[str, object]:
    return {
        "purpose": "door access, renewed",
        "expires_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
        "recorded_by": "reception",
        "scope": scope,
    }


def test_withdrawing_a_renewal_stops_matching_through_the_older_record(api) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, h, _ = api
    pid = client.post("/v1/people", json=person_body("Barack Obama", OBAMA), headers=h["admin"]).json()[
        "person"
    ]["id"]
    renewed = client.post(f"/v1/people/{pid}/consents", json=_consent(["*"]), headers=h["admin"])
    assert renewed.status_code == 201
    records = client.get(f"/v1/people/{pid}/consents", headers=h["admin"]).json()["consents"]
    r = client.post(f"/v1/people/{pid}/consents/{records[-1]['id']}/withdraw", headers=h["admin"])
    assert r.status_code == 200
    # The renewal covered every use of the record it renewed: both are withdrawn.
    assert r.json()["withdrawn"] == [c["id"] for c in records]
    assert r.json()["person"]["consent"]["valid"] is False
    assert r.json()["person"]["consent"]["in_force_for"] == []
    # What the API shows is what matching uses.
    r = client.post(
        "/v1/identify/base64", json={"image_base64": b64(PROBES / "obama.jpg")}, headers=h["device"]
    )
    assert r.json()["faces"][0]["person"] is None
    r = client.post(
        "/v1/verify",
        json={"image_base64": b64(PROBES / "obama.jpg"), "person_id": pid},
        headers=h["operator"],
    )
    assert r.status_code == 422 and r.json()["code"] == "consent_missing"


def test_a_record_for_other_uses_stays_in_force_and_says_so(api) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, h, _ = api
    body = person_body("Joe Biden", BIDEN)
    body["consent"]["scope"] = ["verify"]  # type: ignore[index]
    pid = client.post("/v1/people", json=body, headers=h["admin"]).json()["person"]["id"]
    client.post(f"/v1/people/{pid}/consents", json=_consent(["identify"]), headers=h["admin"])
    person = client.get(f"/v1/people/{pid}", headers=h["admin"]).json()
    assert person["consent"]["in_force_for"] == ["identify", "verify"]
    r = client.post(
        "/v1/identify/base64", json={"image_base64": b64(PROBES / "biden.jpg")}, headers=h["device"]
    )
    assert r.json()["faces"][0]["person"]["person_id"] == pid
    records = client.get(f"/v1/people/{pid}/consents", headers=h["admin"]).json()["consents"]
    r = client.post(f"/v1/people/{pid}/consents/{records[-1]['id']}/withdraw", headers=h["admin"])
    assert r.json()["withdrawn"] == [records[-1]["id"]]
    assert r.json()["person"]["consent"]["valid"] is True
    assert r.json()["person"]["consent"]["in_force_for"] == ["verify"]
    r = client.post(
        "/v1/identify/base64", json={"image_base64": b64(PROBES / "biden.jpg")}, headers=h["device"]
    )
    assert r.json()["faces"][0]["person"] is None
    r = client.post(
        "/v1/verify",
        json={"image_base64": b64(PROBES / "biden.jpg"), "person_id": pid},
        headers=h["operator"],
    )
    assert r.status_code == 200 and r.json()["same_person"] is True
