"""Inside the image (its Python has PyYAML): compose.yaml's structure. Prints the facegate
service's environment as compose would interpolate it (stand-ins for the two secrets it
requires) for compose_settings.py.

Usage: compose_check.py COMPOSE_YAML > ENV_JSON
"""

import json
import re
import sys
from pathlib import Path

import yaml

doc = yaml.safe_load(Path(sys.argv[1]).read_text())
services = doc["services"]
assert set(services) >= {"facegate", "postgres", "mosquitto"}, list(services)
facegate = services["facegate"]
assert facegate["build"]["dockerfile"] == "Containerfile", facegate["build"]
for dep in ("postgres", "mosquitto"):
    assert facegate["depends_on"][dep]["condition"] == "service_healthy", facegate["depends_on"]
    assert services[dep]["healthcheck"]["test"], dep
assert "/readyz" in " ".join(facegate["healthcheck"]["test"])
assert any(v.endswith(":/data") for v in facegate["volumes"]), facegate["volumes"]
named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(".")}
assert named <= set(doc["volumes"]), (named, doc["volumes"])

given = {"FACEGATE_SECRET_KEY": "compose-check-0123456789", "POSTGRES_PASSWORD": "pw"}


def interpolate(value: object) -> str:
    return re.sub(r"\$\{([A-Z_]+)(:[?-][^}]*)?\}", lambda m: given[m.group(1)], str(value))


print(json.dumps({k: interpolate(v) for k, v in dict(facegate["environment"]).items()}))
