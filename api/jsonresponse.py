"""JSON responses where money is a decimal string, and ids and times are strings too."""

from __future__ import annotations

import datetime
import json
import uuid
from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse


def _encode(value: Any) -> str:
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, bytes):
        raise TypeError("bytes are never sent to clients")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class LedgerJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=_encode, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
