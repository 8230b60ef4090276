"""Events leave facegate: the real Mosquitto broker (with Home Assistant discovery), signed
webhooks with retries, a broker that is down, and the server-sent events stream."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from facegate import Gallery
from facegate.events.store import EventStore
from facegate.events.webhook import verify_signature
from facegate.settings import AccessRule, CameraSettings, DoorSettings, UnlockSettings
from facegate.video.service import LiveService

from tests.conftest import consent, need
from tests.integration.test_video import MALE, first_frame, free_port, open_gallery, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.video]

MQTT_HOST, _, MQTT_PORT = os.environ.get("FACEGATE_TEST_MQTT", "127.0.0.1:1883").partition(":")
WEBHOOK_SECRET = "webhook-secret-for-tests"


def _broker_missing() -> str | None:
    try:
        with socket.create_connection((MQTT_HOST, int(MQTT_PORT or 1883)), timeout=2):
            return None
    except OSError as exc:
        return f"the MQTT broker at {MQTT_HOST}:{MQTT_PORT} is not reachable ({exc})"


class Receiver:
    """A webhook receiver that checks signatures and fails the first request of each kind with 503."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.bad_signatures = 0
        self.refused: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                ok = verify_signature(
                    WEBHOOK_SECRET.encode(),
                    self.headers["x-facegate-timestamp"],
                    body,
                    self.headers["x-facegate-signature"],
                )
                if not ok:
                    receiver.bad_signatures += 1
                    self.send_response(401)
                elif self.path not in receiver.refused:
                    receiver.refused.add(self.path)
                    self.send_response(503)  # the first delivery fails: the sender must retry
                else:
                    receiver.received.append((self.path, json.loads(body)))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Subscriber:
    def __init__(self, topics: list[str]) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
        self.client.on_message = lambda _c, _u, m: self.messages.append(
            (m.topic, m.payload.decode(), bool(m.retain))
        )
        self.client.connect(MQTT_HOST, int(MQTT_PORT or 1883))
        for t in topics:
            self.client.subscribe(t, qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def on(self, topic: str) -> list[str]:
        return [p for t, p, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def live_settings(tmp_path: Path, engine, prefix: str, port: int, receiver: Receiver) -> Gallery:  # type: ignore[no-untyped-def]
    return open_gallery(
        tmp_path,
        engine,
        quality={"min_face_px": 60},
        cameras=[CameraSettings(name="hall", source=str(MALE), fps=30)],
        doors=[
            DoorSettings(
                name="front",
                cameras=["hall"],
                rules=[AccessRule(people=["Man"])],
                unlock=UnlockSettings(
                    webhook_url=f"{receiver.url}/unlock",
                    webhook_secret=WEBHOOK_SECRET,
                    allow_http=True,  # the test receiver is on loopback
                    mqtt_topic=f"{prefix}-lock/front/set",
                    open_seconds=0.5,
                ),
            )
        ],
        mqtt={
            "enabled": True,
            "host": MQTT_HOST,
            "port": port,
            "topic_prefix": prefix,
            "discovery_prefix": f"{prefix}-ha",
            "client_id": prefix,
        },
        webhooks=[{"url": f"{receiver.url}/events", "secret": WEBHOOK_SECRET, "retries": 3}],
    )


def test_mqtt_home_assistant_and_webhooks_on_real_services(
    tmp_path: Path, engine, receiver: Receiver
) -> None:  # type: ignore[no-untyped-def]
    need(_broker_missing())
    prefix = f"fgtest{uuid.uuid4().hex[:8]}"
    sub = Subscriber([f"{prefix}/#", f"{prefix}-ha/#", f"{prefix}-lock/#"])
    g = live_settings(tmp_path, engine, prefix, int(MQTT_PORT or 1883), receiver)
    man = g.enroll("Man", [first_frame(MALE)], consent()).person.id
    live = LiveService(g)
    live.start()
    assert live.mqtt is not None and live.mqtt.wait_connected(10)
    wait_for(lambda: "hall" in live.stats, 60, "the clip to be processed")
    wait_for(lambda: len(receiver.received) >= 2, 20, "webhook deliveries")
    wait_for(lambda: "LOCKED" in sub.on(f"{prefix}/door/front/state")[1:], 10, "the door to lock again")
    live.stop()
    time.sleep(0.5)
    sub.close()

    # Availability: online while running, offline after a clean stop.
    assert sub.on(f"{prefix}/availability")[:1] == ["online"]
    assert sub.on(f"{prefix}/availability")[-1] == "offline"
    # Home Assistant discovery: a lock for the door, sensors for the camera.
    lock = json.loads(sub.on(f"{prefix}-ha/lock/facegate_front_lock/config")[0])
    assert lock["command_topic"] == f"{prefix}/door/front/set"
    assert lock["state_topic"] == f"{prefix}/door/front/state"
    assert lock["availability_topic"] == f"{prefix}/availability"
    sensor = json.loads(sub.on(f"{prefix}-ha/sensor/facegate_hall_last_person/config")[0])
    assert sensor["state_topic"] == f"{prefix}/hall/last_person"
    assert json.loads(sub.on(f"{prefix}-ha/binary_sensor/facegate_hall_connected/config")[0])[
        "device_class"
    ] == ("connectivity")
    # The decision as published, and the retained state topics.
    events = [json.loads(p) for p in sub.on(f"{prefix}/hall/events")]
    granted = [e for e in events if e["kind"] == "granted"]
    assert len(granted) == 1 and granted[0]["person_id"] == man
    assert granted[0]["details"]["name"] == "Man" and granted[0]["details"]["door"] == "front"
    assert {"id", "at", "camera", "kind", "details", "snapshot"} <= set(granted[0])
    assert sub.on(f"{prefix}/hall/last_person") == ["Man"]
    assert "streaming" in sub.on(f"{prefix}/hall/status")
    # The door: unlocked by an MQTT command to the lock, then locked again.
    assert sub.on(f"{prefix}-lock/front/set") == ['{"state": "UNLOCK"}']
    assert sub.on(f"{prefix}/door/front/state")[:2] == ["LOCKED", "UNLOCKED"]
    # Webhooks: every delivery signed, the first refused and retried.
    assert receiver.bad_signatures == 0
    paths = [p for p, _ in receiver.received]
    assert paths.count("/unlock") == 1 and paths.count("/events") == 1
    body = dict(receiver.received)["/events"]
    assert body["kind"] == "granted" and body["person_id"] == man
    # The unlock is on the audit trail.
    assert [e.target for e in g.audit.entries(action="door_unlock")] == [g.audit.pseudonym(man)]
    g.close()


def test_a_broker_that_is_down_does_not_stop_decisions(tmp_path: Path, engine, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    dead = free_port()
    g = live_settings(tmp_path, engine, "fgdown", dead, receiver)
    man = g.enroll("Man", [first_frame(MALE)], consent()).person.id
    live = LiveService(g)
    live.start()
    wait_for(lambda: "hall" in live.stats, 60, "the clip to be processed")
    wait_for(lambda: len(receiver.received) >= 2, 20, "webhook deliveries")
    live.stop()
    assert live.mqtt is not None and not live.mqtt.connected.is_set()
    stored = EventStore(g.store).list(kind="granted")
    assert [e.person_id for e in stored] == [man]
    failed = live.metrics.registry.get_sample_value("facegate_sink_failed_total", {"sink": "mqtt"})
    assert failed is not None and failed >= 1
    # The door still opened through its webhook.
    assert [p for p, _ in receiver.received].count("/unlock") == 1
    g.close()


def test_remote_unlock_obeys_live_commands_only() -> None:
    from facegate.events.mqtt import MqttBridge
    from facegate.settings import MqttSettings

    need(_broker_missing())
    prefix = f"fgcmd{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}/door/front/set"
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-pub")
    pub.connect(MQTT_HOST, int(MQTT_PORT or 1883))
    pub.loop_start()
    # An UNLOCK left retained on the broker (a misconfigured automation) must not open the door
    # each time facegate connects.
    pub.publish(topic, "UNLOCK", qos=1, retain=True).wait_for_publish(5)
    commands: list[tuple[str, str]] = []
    settings = MqttSettings(
        enabled=True, host=MQTT_HOST, port=int(MQTT_PORT or 1883), topic_prefix=prefix,
        client_id=prefix, discovery=False, allow_remote_unlock=True,
    )  # fmt: skip
    bridge = MqttBridge(
        settings,
        [],
        [DoorSettings(name="front", cameras=["c"])],
        on_command=lambda d, c: commands.append((d, c)),
    )
    bridge.start()
    try:
        assert bridge.wait_connected(10)
        time.sleep(0.5)
        assert commands == []
        pub.publish(topic, "UNLOCK", qos=1).wait_for_publish(5)
        wait_for(lambda: commands == [("front", "UNLOCK")], 5, "the live command")
    finally:
        pub.publish(topic, "", qos=1, retain=True).wait_for_publish(5)  # clear the retained one
        bridge.close()
        pub.loop_stop()
        pub.disconnect()


def test_a_locked_database_does_not_hold_up_the_camera(tmp_path: Path) -> None:
    """Events are stored off the camera's thread: while another connection holds the database's
    write lock, publishing returns at once and the events are stored once the lock is gone."""
    import sqlite3

    from facegate.events.bus import EventBus
    from facegate.events.metrics import LiveMetrics
    from facegate.gallery.store import SqlStore

    db = tmp_path / "events.db"
    store = SqlStore(f"sqlite:///{db}")
    store.migrate()
    bus = EventBus(EventStore(store), [], LiveMetrics())
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        # Synchronous storing would wait out the busy timeout here and lose all three events.
        for i in range(3):
            bus.publish("door", "unknown", None, {"n": i})
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    bus.flush()
    assert sorted(e.details["n"] for e in EventStore(store).list()) == [0, 1, 2]
    bus.close()
    store.close()


def test_snapshots_are_made_by_the_writer_and_a_backlog_by_the_camera(tmp_path: Path) -> None:
    """A decision's snapshot handed over as a function is made on the bus's writer thread, in
    the events' order; while `DEFERRED_SNAPSHOTS` wait (the writer is stuck on a locked
    database), the next is made by the publishing camera itself, so waiting frames stay few.
    Every event is stored with its snapshot once the database is free."""
    import sqlite3

    from facegate.events.bus import DEFERRED_SNAPSHOTS, EventBus
    from facegate.events.metrics import LiveMetrics
    from facegate.gallery.store import SqlStore

    db = tmp_path / "events.db"
    store = SqlStore(f"sqlite:///{db}")
    store.migrate()
    bus = EventBus(EventStore(store), [], LiveMetrics())
    made_on: dict[int, str] = {}
    first_made = threading.Event()

    def maker(i: int):  # type: ignore[no-untyped-def]
        def make() -> str:
            made_on[i] = threading.current_thread().name
            first_made.set()
            return f"2026/12/02/snap-{i}.jpg.enc"

        return make

    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        bus.publish("door", "unknown", None, {"n": 0}, maker(0))
        assert first_made.wait(5)  # the writer made it and now waits for the database
        for i in range(1, DEFERRED_SNAPSHOTS + 2):
            bus.publish("door", "unknown", None, {"n": i}, maker(i))
        camera = threading.current_thread().name
        assert [i for i, t in sorted(made_on.items()) if t == camera] == [DEFERRED_SNAPSHOTS + 1]
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    bus.flush()
    assert {t for i, t in made_on.items() if i <= DEFERRED_SNAPSHOTS} == {"events:database"}
    stored = sorted(EventStore(store).list(), key=lambda e: e.details["n"])
    assert [(e.details["n"], e.snapshot) for e in stored] == [
        (i, f"2026/12/02/snap-{i}.jpg.enc") for i in range(DEFERRED_SNAPSHOTS + 2)
    ]
    bus.close()
    store.close()
