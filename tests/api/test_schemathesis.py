"""Property-based run of schemathesis against the served OpenAPI schema: no input is a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from facegate import Gallery
from facegate.api.app import create_app
from facegate.api.keys import KeyStore

pytestmark = pytest.mark.api

TOKEN: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory, engine):  # type: ignore[no-untyped-def]
    from facegate import load_settings

    from tests.conftest import SECRET

    data = tmp_path_factory.mktemp("schemathesis")
    s = load_settings(data_dir=data, secret_key=SECRET, api={"rate_limit": "100000/minute"})
    gallery = Gallery.open(s, engine=engine)
    TOKEN["admin"] = KeyStore(gallery.store).create("fuzz", "admin")[1]
    TOKEN["operator"] = KeyStore(gallery.store).create("fuzz-op", "operator")[1]
    TOKEN["auditor"] = KeyStore(gallery.store).create("fuzz-aud", "auditor")[1]
    app = create_app(s, gallery)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    gallery.close()


def test_no_request_is_a_server_error(api_schema) -> None:  # type: ignore[no-untyped-def]
    # Driven by hand rather than by schemathesis's pytest plugin, which does not support this
    # pytest version: every operation, 25 generated requests each, as each role.
    # The event stream stays open until events arrive: it has its own test in test_api.py.
    operations = [r.ok() for r in api_schema.get_all_operations()]
    operations = [op for op in operations if not op.path.endswith("/stream")]
    assert len(operations) >= 15
    failures: list[str] = []
    calls: list[int] = []
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            for role in ("admin", "operator", "auditor"):
                response = case.call(headers={"Authorization": f"Bearer {TOKEN[role]}"})
                calls.append(response.status_code)
                if response.status_code >= 500:
                    where = f"{role} {case.method} {case.formatted_path}"
                    failures.append(f"{where}: {response.status_code} {response.text[:200]}")

        run()
    assert not failures, failures[:5]
    assert len(calls) > 300 and any(200 <= c < 300 for c in calls)  # it did exercise the API
