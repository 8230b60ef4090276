"""Events that devices submit: a doorbell, a door contact, a tamper switch; never a decision.

Decisions (`granted`, `denied`, `unknown`) and camera states come only from facegate's own
pipeline: a key that could post them could forge who entered, into history and into a
person's subject access export. What devices send is checked before it is stored, because
it goes on to SSE, MQTT and webhooks: no control characters, bounded size, finite numbers.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from facegate.errors import BadRequest

DEVICE_KINDS = (
    "doorbell",
    "motion",
    "tamper",
    "door_opened",
    "door_closed",
    "door_held_open",
    "door_forced",
    "note",
)
PIPELINE_KINDS = ("granted", "denied", "unknown", "camera_state")

MAX_DETAILS_BYTES = 4096
MAX_DEPTH = 4
MAX_KEYS = 32
MAX_KEY_CHARS = 64


def utf8_text(value: str) -> bool:
    """Whether `value` encodes as UTF-8: JSON's `"\\ud800"` decodes to a lone surrogate, which
    no database, JSON answer or MQTT payload can carry."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(value: str, what: str) -> str:
    """Refuse text that is not UTF-8, and control characters (newlines would inject fields into
    the SSE stream)."""
    if not utf8_text(value):
        raise BadRequest(f"{what} is not UTF-8 text (a lone surrogate)")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise BadRequest(f"{what} must not contain control or format characters")
    return value


def _check(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BadRequest(f"details nest deeper than {MAX_DEPTH} levels at {path}")
    if isinstance(value, dict):
        if len(value) > MAX_KEYS:
            raise BadRequest(f"details hold more than {MAX_KEYS} keys at {path}")
        for k, v in value.items():
            if not isinstance(k, str) or not 0 < len(k) <= MAX_KEY_CHARS:
                raise BadRequest(f"details keys are 1 to {MAX_KEY_CHARS} characters (at {path})")
            check_text(k, f"details key at {path}")
            _check(v, f"{path}.{k}", depth + 1)
    elif isinstance(value, list):
        if len(value) > MAX_KEYS:
            raise BadRequest(f"details lists hold at most {MAX_KEYS} items (at {path})")
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]", depth + 1)
    elif isinstance(value, str):
        check_text(value, f"details value at {path}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise BadRequest(f"details numbers must be finite (at {path})")
    elif value is not None and not isinstance(value, (bool, int)):
        raise BadRequest(f"details hold JSON values only (at {path})")


def check_details(details: dict[str, Any]) -> dict[str, Any]:
    """`details` if it is small, shallow, finite JSON without control characters."""
    _check(details, "details", 1)
    size = len(json.dumps(details, allow_nan=False, separators=(",", ":")).encode())
    if size > MAX_DETAILS_BYTES:
        raise BadRequest(f"details are {size} bytes as JSON; at most {MAX_DETAILS_BYTES}")
    return details


def check_submission(camera: str, kind: str, details: dict[str, Any]) -> None:
    """Raise `BadRequest` unless a device may submit this event."""
    check_text(camera, "camera")
    if kind not in DEVICE_KINDS:
        why = " (decisions come only from facegate's own pipeline)" if kind in PIPELINE_KINDS else ""
        raise BadRequest(f"kind {kind!r} cannot be submitted{why}; one of {', '.join(DEVICE_KINDS)}")
    check_details(details)
