"""Reading request bodies and query strings, with a 400 in OpenAI's shape for what is wrong."""

from __future__ import annotations

import datetime
import json
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError
from starlette.requests import Request

from api.errors import ApiError

M = TypeVar("M", bound=BaseModel)


def _refuse_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError('send amounts as decimal strings, e.g. "12.50": a JSON float is not exact')
    return value


# A money amount in a JSON body: a decimal string (or a whole number), never a float.
DecimalText = Annotated[str | int, BeforeValidator(_refuse_float)]

# What an `integer` column holds: a JSON integer past it is a 400, not a database error.
INT32_MAX = 2**31 - 1


def _in_utc(value: datetime.datetime) -> datetime.datetime:
    try:
        return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value.astimezone(datetime.UTC)
    except OverflowError:
        raise ValueError("the time is outside years 1 to 9999 once moved to UTC") from None


# A time in a JSON body, as an aware UTC datetime (no zone given: UTC).
UtcDatetime = Annotated[datetime.datetime, AfterValidator(_in_utc)]


# Deeper than any request this service reads: a body nested further is refused, never walked.
MAX_JSON_DEPTH = 64


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _check_strings(data: object, *, text: bool = True) -> None:
    """Every string (keys too) must be storable text (when `text`): no NUL (PostgreSQL's text
    refuses it) and no lone surrogate (it has no UTF-8 encoding). Walked without recursion, to a
    bounded depth."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ApiError(400, f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.", code="invalid_json")
        if isinstance(value, dict):
            for key, item in value.items():
                stack.append((key, depth))
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif text and isinstance(value, str):
            check_text(value, "body")


def check_text(value: str, where: str) -> str:
    """A string bound for the database or a header: no NUL, valid UTF-8 (no lone surrogate)."""
    if "\x00" in value:
        raise ApiError(400, f"{where}: text may not contain NUL (\\u0000) characters.", code="invalid_text")
    if value.isascii():  # the common case, without copying a large string (a base64 image)
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"{where}: text is not valid Unicode (a lone surrogate).", code="invalid_text") from None
    return value


def json_object(raw: bytes, *, storable_text: bool = True) -> dict[str, Any]:
    """A request body that must be a JSON object (an empty body is an empty object).

    Refused with a 400, never a 500: invalid UTF-8, NaN and Infinity (not JSON, and never money),
    integers longer than Python converts (4300 digits), nesting deeper than MAX_JSON_DEPTH, and
    (unless `storable_text` is off, for a caller that stores such text its own way) NUL
    characters and lone surrogates in strings."""
    try:
        # decoded as UTF-8 first: json.loads of bytes would also read UTF-16 and UTF-32 bodies
        data = json.loads((raw or b"{}").decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise ApiError(
            400, f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.", code="invalid_json"
        ) from None
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError, NaN/Infinity, int digits limit
        raise ApiError(400, "The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    _check_strings(data, text=storable_text)
    return data


async def parse_body(request: Request, model: type[M]) -> M:
    data = json_object(await request.body())
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise ApiError(400, f"{field or 'body'}: {first['msg']}", param=field, code="invalid_request") from None


def query_text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return None if value is None else check_text(value, f"'{name}'")


def query_datetime(request: Request, name: str) -> datetime.datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    return to_utc(value, name)


def to_utc(value: str, name: str) -> datetime.datetime:
    """An ISO 8601 date or time as an aware UTC datetime (no zone: UTC). A time that leaves the
    calendar once moved to UTC (0001-01-01T00:00+05:00) is refused like any other bad date."""
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=datetime.UTC) if parsed.tzinfo is None else parsed.astimezone(datetime.UTC)
    except (ValueError, OverflowError):
        raise ApiError(
            400,
            f"'{name}' must be an ISO 8601 date or time from year 1 to 9999, got {value[:64]!r}.",
            param=name,
            code="invalid_date",
        ) from None


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        number = int(value) if len(value) <= 32 else low - 1
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
