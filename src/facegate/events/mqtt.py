"""MQTT: events, camera and door state, and Home Assistant discovery, on a real broker.

Topics (prefix `facegate` by default):
  facegate/availability               online | offline (retained; offline is the broker's last will)
  facegate/<camera>/events            every event of the camera, JSON (see docs/events.md)
  facegate/<camera>/last_person       name of the last person decided at the camera, or "unknown" (retained)
  facegate/<camera>/status            connecting | streaming | reconnecting | ended (retained)
  facegate/door/<door>/state          LOCKED | UNLOCKED (retained)
  facegate/door/<door>/set            UNLOCK | LOCK commands, obeyed only with mqtt.allow_remote_unlock
Discovery (Home Assistant): one lock per door, a "last person" sensor and a connectivity
binary sensor per camera, all tied to the availability topic.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from facegate.events.store import Event
from facegate.settings import DoorSettings, MqttSettings

log = logging.getLogger(__name__)

DECISIONS = ("granted", "denied", "unknown")


class BrokerUnavailable(Exception):
    pass


class MqttBridge:
    """One connection to the broker; reconnects by itself. Publishing never blocks."""

    name = "mqtt"

    def __init__(
        self,
        settings: MqttSettings,
        cameras: Sequence[str],
        doors: Sequence[DoorSettings],
        on_command: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.cameras = list(cameras)
        self.doors = list(doors)
        self.on_command = on_command
        self.prefix = settings.topic_prefix.rstrip("/")
        self.connected = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.client_id)
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else None
            c.username_pw_set(settings.username, password)
        if settings.tls:
            c.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        c.will_set(self.availability_topic, "offline", qos=1, retain=True)
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self.client = c

    # --- topics ------------------------------------------------------------------------------

    @property
    def availability_topic(self) -> str:
        return f"{self.prefix}/availability"

    def camera_topic(self, camera: str, leaf: str) -> str:
        return f"{self.prefix}/{camera}/{leaf}"

    def door_topic(self, door: str, leaf: str) -> str:
        return f"{self.prefix}/door/{door}/{leaf}"

    # --- connection --------------------------------------------------------------------------

    def start(self) -> None:
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=30)
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT broker refused the connection: %s", reason)
            return
        self.connected.set()
        client.publish(self.availability_topic, "online", qos=1, retain=True)
        if self.settings.discovery:
            for topic, payload in self.discovery():
                client.publish(topic, json.dumps(payload), qos=1, retain=True)
        for door in self.doors:
            client.publish(self.door_topic(door.name, "state"), "LOCKED", qos=1, retain=True)
            client.subscribe(self.door_topic(door.name, "set"), qos=1)
        log.info("MQTT connected to %s:%s", self.settings.host, self.settings.port)

    def still_online(self) -> None:
        """Say "online" again (replicas, every heartbeat): another replica that stopped or died
        set the shared availability topic to "offline", yet this one still serves."""
        if self.connected.is_set():
            self.client.publish(self.availability_topic, "online", qos=1, retain=True)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("MQTT disconnected: %s", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            # A retained UNLOCK would open the door again at every reconnect: commands are live only.
            log.warning("ignored a retained command on %s", msg.topic)
            return
        parts = msg.topic.split("/")
        door = parts[-2] if len(parts) >= 2 else ""
        command = msg.payload.decode(errors="replace").strip().upper()
        if not self.settings.allow_remote_unlock:
            log.warning("ignored MQTT %s for door %s: mqtt.allow_remote_unlock is off", command, door)
            return
        if self.on_command is not None and command in ("UNLOCK", "LOCK"):
            self.on_command(door, command)

    def close(self) -> None:
        if self.connected.is_set():
            self.client.publish(self.availability_topic, "offline", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    # --- publishing --------------------------------------------------------------------------

    def publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        if not self.connected.is_set():
            # Not queued inside paho: a broker down for hours must not grow memory.
            raise BrokerUnavailable(f"not connected to {self.settings.host}:{self.settings.port}")
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise BrokerUnavailable(mqtt.error_string(info.rc))

    def deliver(self, event: Event) -> None:
        self.publish(self.camera_topic(event.camera, "events"), json.dumps(event.to_dict(), default=str))
        if event.kind in DECISIONS:
            name = event.details.get("name") if event.kind != "unknown" else None
            self.publish(self.camera_topic(event.camera, "last_person"), str(name or "unknown"), retain=True)
        elif event.kind == "camera_state":
            self.publish(
                self.camera_topic(event.camera, "status"), str(event.details.get("state")), retain=True
            )

    def door_state(self, door: str, state: str) -> None:
        self.publish(self.door_topic(door, "state"), state, retain=True)

    # --- Home Assistant discovery ------------------------------------------------------------

    def discovery(self) -> list[tuple[str, dict[str, Any]]]:
        dp = self.settings.discovery_prefix.rstrip("/")
        avail = {"availability_topic": self.availability_topic}
        out: list[tuple[str, dict[str, Any]]] = []
        for door in self.doors:
            uid = f"facegate_{door.name}_lock"
            out.append(
                (
                    f"{dp}/lock/{uid}/config",
                    {
                        "name": f"{door.name} door",
                        "unique_id": uid,
                        "command_topic": self.door_topic(door.name, "set"),
                        "state_topic": self.door_topic(door.name, "state"),
                        "payload_lock": "LOCK",
                        "payload_unlock": "UNLOCK",
                        "state_locked": "LOCKED",
                        "state_unlocked": "UNLOCKED",
                        "device": self._device(f"door_{door.name}", f"facegate door {door.name}", "door"),
                        **avail,
                    },
                )
            )
        for camera in self.cameras:
            device = self._device(f"camera_{camera}", f"facegate camera {camera}", "camera")
            uid = f"facegate_{camera}_last_person"
            out.append(
                (
                    f"{dp}/sensor/{uid}/config",
                    {
                        "name": "Last person",
                        "unique_id": uid,
                        "state_topic": self.camera_topic(camera, "last_person"),
                        "icon": "mdi:account-check",
                        "device": device,
                        **avail,
                    },
                )
            )
            uid = f"facegate_{camera}_connected"
            out.append(
                (
                    f"{dp}/binary_sensor/{uid}/config",
                    {
                        "name": "Camera connected",
                        "unique_id": uid,
                        "state_topic": self.camera_topic(camera, "status"),
                        "value_template": "{{ 'ON' if value == 'streaming' else 'OFF' }}",
                        "device_class": "connectivity",
                        "device": device,
                        **avail,
                    },
                )
            )
        return out

    @staticmethod
    def _device(ident: str, name: str, model: str) -> dict[str, Any]:
        return {
            "identifiers": [f"facegate_{ident}"],
            "name": name,
            "manufacturer": "facegate",
            "model": model,
        }
