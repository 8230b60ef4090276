"""Settings of the event sinks: MQTT, webhooks, the event queue and snapshots."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class MqttSettings(BaseModel):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    client_id: str = "facegate"
    topic_prefix: str = Field("facegate", pattern=r"^[A-Za-z0-9_/-]+$")
    discovery: bool = Field(True, description="Publish Home Assistant MQTT discovery")
    discovery_prefix: str = "homeassistant"
    allow_remote_unlock: bool = Field(
        False,
        description="Obey UNLOCK commands on facegate/door/<door>/set (anyone on the broker could open)",
    )


class WebhookSettings(BaseModel):
    url: str = Field(pattern=r"^https?://")
    secret: SecretStr = Field(description="HMAC-SHA256 key; receivers check X-Facegate-Signature")
    kinds: list[str] = Field(default_factory=lambda: ["granted", "denied", "unknown"])
    timeout_s: float = Field(5.0, gt=0)
    retries: int = Field(4, ge=0, le=10)


class EventSettings(BaseModel):
    queue_size: int = Field(
        256, ge=1, description="Events waiting per sink; beyond it they are dropped and counted"
    )
    snapshots: bool = Field(True, description="Keep an encrypted snapshot of each decision moment")
    snapshot_max_side: int = Field(960, ge=160)
    redact: Literal["others", "all", "none"] = Field(
        "others", description="Blur faces in snapshots: all but the decided one, all, or none"
    )
