"""Door actions: a granted decision unlocks the door through a signed webhook or an MQTT command."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

import httpx

from facegate.events.mqtt import MqttBridge
from facegate.events.store import Event
from facegate.events.webhook import DeliveryFailed, origin, post_signed
from facegate.settings import DoorSettings

log = logging.getLogger(__name__)


class DoorActuator:
    """An event sink for one door: opens it on `granted` events of that door."""

    def __init__(
        self,
        door: DoorSettings,
        mqtt: MqttBridge | None = None,
        client: httpx.Client | None = None,
        audit: Callable[[str, str, str | None], None] | None = None,
    ) -> None:
        self.door = door
        self.name = f"door:{door.name}"
        self.mqtt = mqtt
        self.client = client or httpx.Client()
        self.audit = audit  # (actor, door, person_id): every unlock is on the audit trail
        self.unlocks = 0
        self._relock: threading.Timer | None = None

    def deliver(self, event: Event) -> None:
        if event.kind == "granted" and event.details.get("door") == self.door.name:
            self.unlock(f"camera:{event.camera}", event.person_id)

    def unlock(self, actor: str, person_id: str | None = None) -> None:
        unlock = self.door.unlock
        errors = []
        if unlock is not None and unlock.webhook_url and unlock.webhook_secret is not None:
            try:
                post_signed(
                    self.client,
                    unlock.webhook_url,
                    unlock.webhook_secret.get_secret_value().encode(),
                    {
                        "door": self.door.name,
                        "action": "unlock",
                        "by": actor,
                        "seconds": unlock.open_seconds,
                        # Single use: a controller with a `ReplayGuard` obeys each command once.
                        "nonce": uuid.uuid4().hex,
                    },
                    event="unlock",
                    retries=2,
                    timeout=3.0,
                )
            except DeliveryFailed as exc:
                errors.append(str(exc))
            except Exception as exc:  # never its message: it may quote the URL and its token
                errors.append(f"webhook {origin(unlock.webhook_url)}: {type(exc).__name__}")
        if unlock is not None and unlock.mqtt_topic and self.mqtt is not None:
            try:
                self.mqtt.publish(unlock.mqtt_topic, unlock.mqtt_payload)
            except Exception as exc:
                errors.append(f"mqtt: {exc}")
        self.unlocks += 1
        self._set_state("UNLOCKED")
        seconds = unlock.open_seconds if unlock is not None else 5.0
        if self._relock is not None:
            self._relock.cancel()
        self._relock = threading.Timer(seconds, self._set_state, ("LOCKED",))
        self._relock.daemon = True
        self._relock.start()
        if self.audit is not None:
            # After opening: a busy database must not keep the door shut.
            try:
                self.audit(actor, self.door.name, person_id)
            except Exception as exc:
                errors.append(f"not audited: {exc}")
        if errors:
            raise RuntimeError(f"door {self.door.name}: " + "; ".join(errors))

    def _set_state(self, state: str) -> None:
        if self.mqtt is not None:
            try:
                self.mqtt.door_state(self.door.name, state)
            except Exception as exc:
                log.debug("door state %s not published: %s", state, exc)

    def close(self) -> None:
        if self._relock is not None:
            self._relock.cancel()
        self.client.close()
