"""The service's access log without query strings: a console search (`/people?q=<name>`) or a
filter names people, and an access log is kept and shipped far more widely than the audit trail."""

from __future__ import annotations

import copy
import logging
from typing import Any


class NoQuery(logging.Filter):
    """Cut the query string off the path of uvicorn's access-log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn logs (client, method, path with query, http version, status).
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, its access log passed through `NoQuery`."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["no_query"] = {"()": NoQuery}
    config["loggers"]["uvicorn.access"]["filters"] = ["no_query"]
    return config
