"""What the console's tests share: an app with one console user per role, and signing in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi.testclient import TestClient

PASSWORD = "a long enough console password"
ROLES = ("admin", "operator", "auditor")


@dataclass
class Signed:
    client: TestClient
    csrf: str


def login_token(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the sign-in form carries no CSRF token"
    return found.group(1)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Signed:
    r = client.post(
        "/login",
        data={"name": name, "password": password, "csrf": login_token(client)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    home = client.get(r.headers["location"])
    return Signed(client, csrf_of(home.text))
