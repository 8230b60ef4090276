"""Hide credentials in text before it reaches a log, an event or an error message.

Camera URLs carry passwords (`rtsp://user:pass@host/...`), and a decoder's error repeats the
URL it failed on; events travel to MQTT, webhooks and SSE, so they are cleaned where made.
"""

from __future__ import annotations

import re

# userinfo in any scheme://user[:password]@host
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/@?#]+@")
# key=value secrets in query strings and option lists
_SECRET_PARAM = re.compile(
    r"(?i)\b(password|passwd|pwd|pass|token|secret|api_key|apikey|auth|key|signature|sig)=([^\s&;,]+)"
)


def hide_credentials(text: str) -> str:
    """`text` with URL user names and passwords, and secret query parameters, replaced by ***."""
    text = _USERINFO.sub(r"\1***@", text)
    return _SECRET_PARAM.sub(r"\1=***", text)
