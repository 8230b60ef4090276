"""Inside the image: compose.yaml's facegate environment, read by facegate's own settings.

Usage: compose_settings.py ENV_JSON (written by compose_check.py)
Every FACEGATE_ name must be a setting (the environment source ignores names it does not know).
"""

import json
import os
import sys
from pathlib import Path

env = json.loads(Path(sys.argv[1]).read_text())
os.environ.update(env)

from facegate.settings import Settings, load_settings  # noqa: E402 (reads the environment above)

settings = load_settings()
for key in env:
    model: type = Settings
    for part in key.removeprefix("FACEGATE_").lower().split("__"):
        assert part in model.model_fields, f"{key}: no setting {part!r}"
        model = model.model_fields[part].annotation
url = settings.resolved_database_url
assert url.startswith("postgresql+psycopg://facegate:") and "@postgres:5432/" in url, url
mqtt = settings.mqtt
assert mqtt.enabled and mqtt.host == "mosquitto" and mqtt.port == 1883 and mqtt.discovery, mqtt
assert settings.secret_key is not None and settings.data_dir.as_posix() == "/data"
print(f"compose.yaml: {len(env)} facegate variables, all settings: PostgreSQL at postgres, MQTT at mosquitto")
