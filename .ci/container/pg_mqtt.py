"""Inside the image, against the PostgreSQL and the MQTT broker CI runs (FACEGATE_TEST_PG_URL;
FACEGATE_TEST_MQTT, default 127.0.0.1:1883): `facegate serve` configured as compose.yaml does it
(FACEGATE_DATABASE_URL, FACEGATE_MQTT__*), on a database of its own (dropped after) and under
topic prefixes of its own (cleared after). /readyz answers (the database is there and opens
with this key), facegate's availability is `online` and its Home Assistant discovery of a door's
lock and a camera's sensor arrives.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import make_url

server_url = make_url(os.environ.get("FACEGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
broker_host, _, broker_port = os.environ.get("FACEGATE_TEST_MQTT", "127.0.0.1:1883").partition(":")
tag = f"fgci{uuid.uuid4().hex[:8]}"
database = f"facegate_container_{tag}"
admin = server_url.set(drivername="postgresql").render_as_string(hide_password=False)
with psycopg.connect(admin, autocommit=True) as c:
    c.execute(f'CREATE DATABASE "{database}"')

received: dict[str, str] = {}
sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{tag}-check")
sub.on_message = lambda client, userdata, m: received.__setitem__(m.topic, m.payload.decode())
sub.connect(broker_host, int(broker_port or 1883))
sub.subscribe([(f"{tag}/#", 1), (f"{tag}-ha/#", 1)])
sub.loop_start()

port = "18089"
env = dict(
    os.environ,
    FACEGATE_DATA_DIR=f"/tmp/{tag}",
    FACEGATE_SECRET_KEY="container-smoke-test-0123456789",
    FACEGATE_DATABASE_URL=server_url.set(database=database).render_as_string(hide_password=False),
    FACEGATE_MQTT__ENABLED="true",
    FACEGATE_MQTT__HOST=broker_host,
    FACEGATE_MQTT__PORT=broker_port or "1883",
    FACEGATE_MQTT__CLIENT_ID=tag,
    FACEGATE_MQTT__TOPIC_PREFIX=tag,
    FACEGATE_MQTT__DISCOVERY_PREFIX=f"{tag}-ha",
    # A camera that never answers (it only reconnects), so that the live service and its MQTT
    # bridge start; its door, with a time zone (zoneinfo reads the image's tzdata).
    FACEGATE_CAMERAS=json.dumps([{"name": "front", "source": "rtsp://127.0.0.1:9/none"}]),
    FACEGATE_DOORS=json.dumps([{"name": "front", "cameras": ["front"], "timezone": "Europe/Paris"}]),
)
log_path = Path(f"/tmp/{tag}.log")
with log_path.open("w") as log:
    server = subprocess.Popen(
        ["facegate", "serve", "--host", "127.0.0.1", "--port", port], env=env, stdout=log, stderr=log
    )
lock = f"{tag}-ha/lock/facegate_front_lock/config"
sensor = f"{tag}-ha/sensor/facegate_front_last_person/config"
try:
    t0 = time.monotonic()
    while True:
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        if ready and received.get(f"{tag}/availability") == "online" and {lock, sensor} <= set(received):
            break
        if time.monotonic() - t0 > 120 or server.poll() is not None:
            sys.exit(f"not ready (seen {sorted(received)}): " + log_path.read_text()[-2000:])
        time.sleep(0.5)
    discovery = json.loads(received[lock])
    assert discovery["command_topic"] == f"{tag}/door/front/set", discovery
    assert discovery["availability_topic"] == f"{tag}/availability", discovery
    took = time.monotonic() - t0
    print(
        f"serve on PostgreSQL and MQTT as compose.yaml configures it: ready in {took:.1f} s,"
        f" availability online, Home Assistant discovery: {lock.split('/', 2)[2]}, {sensor.split('/', 2)[2]}"
    )
finally:
    server.terminate()
    server.wait(30)
    time.sleep(0.5)
    for topic in list(received):  # no retained message of this check stays on the broker
        sub.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    sub.loop_stop()
    sub.disconnect()
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
