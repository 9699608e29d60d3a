"""Reading request bodies and query strings, with a 400 in OpenAI's shape for what is wrong."""

from __future__ import annotations

import datetime
import json
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ValidationError
from starlette.requests import Request

from api.errors import ApiError

M = TypeVar("M", bound=BaseModel)


def _refuse_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError('send amounts as decimal strings, e.g. "12.50": a JSON float is not exact')
    return value


# A money amount in a JSON body: a decimal string (or a whole number), never a float.
DecimalText = Annotated[str | int, BeforeValidator(_refuse_float)]


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (an empty body is an empty object)."""
    try:
        data = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    return data


async def parse_body(request: Request, model: type[M]) -> M:
    data = json_object(await request.body())
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise ApiError(400, f"{field or 'body'}: {first['msg']}", param=field, code="invalid_request") from None


def query_datetime(request: Request, name: str) -> datetime.datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, f"'{name}' must be an ISO 8601 date or time, got {value!r}.", param=name, code="invalid_date"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise ApiError(
            400,
            f"'{name}' must be a whole number from {low} to {high}.",
            param=name,
            code="invalid_parameter",
        )
    return number


def page(rows: list[Any], limit: int, cursor_field: str = "id") -> dict[str, Any]:
    """A list page: rows were fetched with limit + 1 to learn whether more follow."""
    has_more = len(rows) > limit
    data = [dict(r) for r in rows[:limit]]
    return {
        "object": "list",
        "data": data,
        "has_more": has_more,
        "next_cursor": data[-1][cursor_field] if has_more else None,
    }
