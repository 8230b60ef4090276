"""Settings of the served surfaces and the retention policy: API, privacy, web console."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator


class ApiSettings(BaseModel):
    rate_limit: str = Field("120/minute", description="Requests per API key (limits syntax, e.g. 10/second)")
    request_timeout: float = Field(60.0, gt=0, description="Seconds before a request answers 504")
    max_request_bytes: int = Field(64 * 1024 * 1024, gt=0, description="Largest request body")
    anonymous_rate_limit: str = Field(
        "60/minute",
        description="Per client address: requests without a valid key (bad keys, public pages); "
        "over it, the address gets 429 before any key is looked at",
    )
    max_pending: int = Field(
        8,
        ge=1,
        description="Identify, verify and detect requests admitted at once, uploads included; "
        "more get 503 with Retry-After before their body is read",
    )
    public_docs: bool = Field(
        True, description="Serve /docs and /openapi.json without a key (false: not served at all)"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDR ranges of reverse proxies whose X-Forwarded-For names the "
        "client (rate limits, sign-in lockout, audit); from anyone else the header is ignored",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for entry in v:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {entry!r} is not an IP address or CIDR range "
                    "(trusting every sender would let any client choose its own address)"
                ) from None
        return [e.strip() for e in v]


class PrivacySettings(BaseModel):
    """Retention: how long each kind of data is kept (see `facegate privacy policy`)."""

    consent_grace_days: float = Field(
        30,
        ge=0,
        le=1095,
        description="Templates are destroyed this long after consent expires or is withdrawn",
    )
    max_inactive_days: float = Field(
        1095,
        gt=0,
        le=1095,
        description="...or this long after the person was last recognised (BIPA: 3 years)",
    )
    event_days: float = Field(30, gt=0, description="Door decision and camera events")
    snapshot_days: float = Field(7, gt=0, description="Snapshots of decisions about enrolled people")
    unknown_snapshot_days: float = Field(1, gt=0, description="Snapshots of unknown visitors")
    audit_days: float = Field(730, gt=0, description="Audit trail entries and erasure receipts")
    purge_interval_s: float = Field(3600, gt=0, description="How often `serve` enforces the policy")


class WebSettings(BaseModel):
    """The web console served at / by `facegate serve`."""

    enabled: bool = Field(True, description="Serve the web console at /")
    session_hours: float = Field(
        12, gt=0, le=720, description="A console session ends this long after sign-in"
    )
    session_idle_minutes: float = Field(
        30, gt=0, le=1440, description="A console session ends after this long without a request"
    )
    secure_cookies: bool = Field(
        True, description="Mark the session cookie Secure (sent over HTTPS and to localhost only)"
    )
    sign_in_rate_limit: str = Field(
        "5/minute",
        description="Failed sign-ins per name from one client address (an IPv6 client by its /64)",
    )
    sign_in_name_rate_limit: str = Field(
        "100/hour", description="Failed sign-ins per name from anywhere (a distributed guesser)"
    )
    consent_soon_days: float = Field(
        30, ge=0, description="Consent shown as 'expiring soon' this long before"
    )


def _default_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ReplicaSettings(BaseModel):
    """Several `facegate serve` processes on one PostgreSQL: each camera is leased to one."""

    id: str = Field(
        default_factory=_default_replica_id,
        min_length=1,
        max_length=100,
        description="This replica's name, shown in the console and on its events (default: host-pid)",
    )
    leases: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Lease each camera to one replica at a time (auto: on with PostgreSQL, where "
        "replicas can share the database; off: every replica runs every camera)",
    )
    lease_ttl_s: float = Field(
        5.0,
        ge=1.0,
        le=300.0,
        description="A camera whose replica stopped renewing is taken over this long after its last renewal",
    )
    heartbeat_s: float = Field(
        1.0, gt=0, le=60.0, description="How often a replica renews its leases and looks for free cameras"
    )

    @model_validator(mode="after")
    def _renew_in_time(self) -> ReplicaSettings:
        if self.heartbeat_s * 2 > self.lease_ttl_s:
            raise ValueError(
                "replica.heartbeat_s must be at most half of replica.lease_ttl_s "
                "(one late renewal must not lose a camera)"
            )
        return self
