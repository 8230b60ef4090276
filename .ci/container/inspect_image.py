"""On the host: the image's configuration (`buildah inspect --type image`) is what a user gets.

Usage: inspect_image.py INSPECT_JSON VERSION HEALTH_JSON_OUT
Checks the OCI labels, the non-root user, the /data volume, the port, the environment and the
HEALTHCHECK; writes the image's command and healthcheck to HEALTH_JSON_OUT for healthcheck.py.
"""

import json
import sys
from pathlib import Path

image = json.loads(Path(sys.argv[1]).read_text())
version, health_out = sys.argv[2], sys.argv[3]
oci, docker = image["OCIv1"]["config"], image["Docker"]["config"]

labels = oci.get("Labels") or {}
want = {"licenses": "Apache-2.0", "title": "facegate", "version": version}
for k, v in want.items():
    assert labels.get(f"org.opencontainers.image.{k}") == v, (k, labels)
for k in ("source", "description"):
    assert labels.get(f"org.opencontainers.image.{k}"), (k, labels)
assert oci.get("User") == "10001:10001", oci.get("User")
assert "/data" in (oci.get("Volumes") or {}), oci.get("Volumes")
assert "8080/tcp" in (oci.get("ExposedPorts") or {}), oci.get("ExposedPorts")
env = dict(e.split("=", 1) for e in oci.get("Env", []))
assert env.get("FACEGATE_DATA_DIR") == "/data", env
assert env.get("FACEGATE_CONFIG") == "/config/config.yaml", env
health = docker.get("Healthcheck") or {}
test = health.get("Test") or []
assert test[:2] == ["CMD", "/opt/facegate/bin/python"] and "/readyz" in " ".join(test), health
command = oci["Entrypoint"] + oci["Cmd"]
assert command[:2] == ["facegate", "serve"] and "0.0.0.0" in command, command
Path(health_out).write_text(json.dumps({"command": command, "test": test}))

oci_labels = {k.rsplit(".", 1)[1]: v for k, v in labels.items() if k.startswith("org.opencontainers")}
print("labels", oci_labels)
print(f"user {oci['User']}, volume /data, port 8080, command {' '.join(command)}, healthcheck on /readyz")
