"""JSON responses where money is a decimal string, and ids and times are strings too."""

from __future__ import annotations

import datetime
import json
import re
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


# A UTF-16 surrogate with no partner: valid in JSON text ("\ud83d", an upstream's truncated emoji),
# with no UTF-8 encoding.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class LedgerJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        text = json.dumps(content, default=_encode, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        try:
            return text.encode()
        except UnicodeEncodeError:
            # an upstream's answer carried a lone surrogate: sent as U+FFFD, so the client gets an
            # answer its SDK parses (this was a 500 after the request had been charged)
            return LONE_SURROGATE.sub("\ufffd", text).encode()
