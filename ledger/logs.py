"""Structured logs: one JSON object a line, carrying the request id of the request being served.

Nothing secret is ever put in a log record by this service (keys, tokens and BYOK keys are never
passed to a logger), and the access line carries the method, path, status and duration only.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def _with_request_id(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.request_id = request_id_var.get()
        return record

    make.carries_request_id = True  # type: ignore[attr-defined]
    return make


# Every record learns the request id when it is made, in the request's own context, so any
# handler (ours, pytest's, an operator's) can show it.
if not getattr(logging.getLogRecordFactory(), "carries_request_id", False):
    logging.setLogRecordFactory(_with_request_id(logging.getLogRecordFactory()))

# Attributes a record may carry through `extra=` that belong in the JSON line.
EXTRA_FIELDS = ("method", "path", "status", "duration_ms", "client_request_id", "event_id", "event_type")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := getattr(record, "request_id", None)) is not None:
            entry["request_id"] = request_id
        for field in EXTRA_FIELDS:
            if (value := getattr(record, field, None)) is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
