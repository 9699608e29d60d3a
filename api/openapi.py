"""GET /openapi.json: the OpenAPI 3.1 document of every endpoint, written beside the routes.

Request bodies come from the routes' own pydantic models where they have one, so the document
cannot drift from what is validated; response shapes are written out here and kept true by
tests/api/test_openapi.py (every route documented, every documented path served, the suite's
responses and a schemathesis run validated against them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from api.jsonresponse import LedgerJSONResponse
from api.routes import account, admin, keys, provider_keys, purchases
from ledger.gateway.adapters import chat as chat_adapter
from ledger.gateway.adapters import completions as completions_adapter
from ledger.gateway.adapters import messages as messages_adapter
from ledger.gateway.adapters import responses as responses_adapter
from ledger.gateway.pricing import TOKEN_TYPES

Schema = dict[str, Any]

DECIMAL: Schema = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "a decimal, as text"}
UUID: Schema = {"type": "string", "format": "uuid"}
TIME: Schema = {"type": "string", "format": "date-time"}
DAY: Schema = {"type": "string", "format": "date", "description": "a UTC day, YYYY-MM-DD"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with these fields; more may follow (a new column is not a breaking change)."""
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}


ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

# Anthropic's error shape, answered on /v1/messages* (its SDK reads error.type)
ANTHROPIC_ERROR: Schema = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
        "request_id": {"type": "string"},
    },
}

ERROR_MEANING = {
    400: "Invalid request: malformed JSON, a field out of range, a bad parameter. Nothing is written.",
    401: "Missing or wrong key or token.",
    403: "The caller's role (or key) may not do this (code permission_denied).",
    402: "Not enough credits for the most this request can cost (code insufficient_quota).",
    404: "No such thing (or the admin API is off).",
    408: "The body did not arrive within LEDGER_BODY_READ_TIMEOUT_SECONDS; nothing is written.",
    409: "Conflicts with the current state (a name taken, a replayed reference, an event not applicable yet).",
    413: "The body is larger than this endpoint accepts; refused before it is read.",
    499: "The client went away mid-stream (logged, never sent).",
    502: "Every upstream (LLM provider, Stripe) failed, or answered with something that is not a completion;"
    " or the provider failed after it received the request (x-should-retry: false, the prompt charged).",
    503: "A dependency is unavailable: the database (with Retry-After), or a feature the operator has not configured.",
    504: "The provider received the request and did not answer within its timeout: it may have generated the"
    " answer, so it is not retried (x-should-retry: false) and the prompt is charged.",
}

# Every endpoint may answer these: bad input, size or a body too slow (400, 413, 408) and the
# database being away (503).
COMMON_ERRORS = (400, 408, 413, 503)


def json_body(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def responses(ok: dict[int, Schema], *errors: int, ok_description: str = "Success") -> Schema:
    out: Schema = {str(status): json_body(schema, ok_description) for status, schema in ok.items()}
    for status in sorted({*COMMON_ERRORS, *errors}):
        out[str(status)] = {
            "description": ERROR_MEANING[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if status == 503:
            out[str(status)]["headers"] = {
                "Retry-After": {"description": "seconds, when the database is away", "schema": {"type": "string"}}
            }
    return out


def anthropic_responses(ok: dict[int, Schema], *errors: int) -> Schema:
    """Responses of an Anthropic-shaped endpoint: its errors in Anthropic's shape, and the
    provider's own refusals passed through."""
    out = responses(ok, 401, *errors)
    for status, entry in out.items():
        if not status.startswith("2"):
            entry["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/AnthropicError"}}}
    out["4XX"] = {
        "description": "The provider's own refusal of the request, passed through; nothing charged",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return out


ANTHROPIC_HEADERS = [
    {
        "name": "anthropic-version",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "passed to the provider (2023-06-01 when absent)",
    },
    {
        "name": "anthropic-beta",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "passed to the provider; only betas that do not change what a token costs are accepted",
    },
]


def model_body(model: type[BaseModel]) -> Schema:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def path(name: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def page_of(row: Schema) -> Schema:
    return obj(
        {
            "object": {"const": "list"},
            "data": {"type": "array", "items": row},
            "has_more": {"type": "boolean"},
            "next_cursor": {"type": ["integer", "null"]},
        }
    )


def list_of(row: Schema) -> Schema:
    return obj({"object": {"const": "list"}, "data": {"type": "array", "items": row}})


ACCOUNT = obj(
    {
        "user_id": UUID,
        "tier": {"type": "string"},
        "power_level": {"type": "string"},
        "balance": DECIMAL,
        "credits_held": DECIMAL,
        "monthly_allowance": nullable(DECIMAL),
    },
    {
        "email": {"type": ["string", "null"]},
        "allowance_remaining": nullable(DECIMAL),
        # the budgets and rate limits over the calling key (docs/controls.md)
        "budgets": {"type": "array", "items": obj({"id": UUID, "period": {"type": "string"}, "remaining": DECIMAL})},
        "rate_limits": {"type": "array", "items": obj({"id": UUID, "strategy": {"type": "string"}})},
        "credits_by_lot": {
            "type": "array",
            "description": "the balance by lot, in spending order: grants (by priority, then expiry), then purchased",
            "items": obj(
                {
                    "lot": {"type": "string", "enum": ["grant", "purchased"]},
                    "expires_at": {"type": ["string", "null"]},
                    "remaining": DECIMAL,
                }
            ),
        },
    },
)
TRANSACTION = obj(
    {
        "id": {"type": "integer"},
        "transaction_type": {"enum": ["purchase", "usage", "refund", "admin_adjustment", "bonus", "expiry"]},
        "amount": DECIMAL,
        "balance_after": DECIMAL,
        "created_at": TIME,
    }
)
USAGE_PART_COLUMNS = [f"{name}_tokens" for name in TOKEN_TYPES if name not in ("input", "output")]
USAGE_ROW = obj(
    {
        "id": {"type": "integer"},
        "request_id": {"type": "string"},
        "model": {"type": "string"},
        "credits_used": DECIMAL,
        "success": {"type": "boolean"},
        "created_at": TIME,
    },
    # the totals, then each token type's part of them
    {name: {"type": "integer"} for name in ("prompt_tokens", "completion_tokens", *USAGE_PART_COLUMNS)}
    | {"api": {"type": ["string", "null"]}},
)
PROVIDER_KEY = obj(
    {
        "id": UUID,
        "provider": {"type": "string"},
        "key_name": {"type": "string"},
        "key_hint": {"type": ["string", "null"]},
        "is_default": {"type": "boolean"},
        "is_active": {"type": "boolean"},
        # needs_reentry: it no longer decrypts (the encryption key changed); the platform's key serves
        "status": {"enum": ["active", "needs_reentry"]},
    }
)
PACKAGE = obj(
    {"id": UUID, "name": {"type": "string"}, "credits": DECIMAL, "price_usd": DECIMAL},
    {"discount_percentage": DECIMAL, "is_active": {"type": "boolean"}},
)
PRICE = obj(
    {
        "provider": {"type": "string"},
        "model": {"type": "string"},
        "input_usd_per_mtok": DECIMAL,
        "output_usd_per_mtok": DECIMAL,
        "max_output_tokens": {"type": "integer"},
    }
)
_CHANGE: Schema = {"type": "array", "items": obj({"provider": {"type": "string"}, "model": {"type": "string"}})}
PRICE_SYNC_REPORT = obj(
    {
        "synced_from": {"type": "string"},
        "dry_run": {"type": "boolean"},
        "force": {"type": "boolean"},
        "added": _CHANGE,
        "updated": _CHANGE,
        "kept": _CHANGE,
        "skipped": {"type": "array", "items": obj({"model": {"type": "string"}, "reason": {"type": "string"}})},
        "unchanged": {"type": "integer"},
    }
)
OWN_KEY = obj(
    {
        "id": UUID,
        "prefix": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "is_active": {"type": "boolean"},
        "expires_at": nullable(TIME),
        "created_at": TIME,
        "last_used_at": nullable(TIME),
        "revoked_at": nullable(TIME),
    }
)
NEW_KEY = obj(
    {
        "id": UUID,
        "key": {"type": "string", "description": "the full key: shown this once, never again"},
        "prefix": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "expires_at": nullable(TIME),
    }
)
DAILY_USAGE = obj(
    {
        "object": {"const": "list"},
        "days": {"type": "integer", "minimum": 1, "maximum": 90},
        "from": DAY,
        "to": DAY,
        "data": {
            "type": "array",
            "items": obj(
                {
                    "day": DAY,
                    "requests": {"type": "integer", "minimum": 1},
                    "credits": DECIMAL,
                },
                {"model": {"type": "string"}, "project": {"type": "string"}, "project_id": nullable(UUID)},
            ),
        },
    }
)
GATEWAY_KEY = obj({"id": UUID, "user_id": UUID, "prefix": {"type": "string"}, "is_active": {"type": "boolean"}})
GRANT = obj({"success": {"type": "boolean"}, "new_balance": DECIMAL, "transaction_id": {"type": ["integer", "null"]}})
_DESCRIBED_CHAT_FIELDS = {
    "model", "messages", "stream", "max_tokens", "max_completion_tokens", "n", "stream_options", "service_tier",
    "modalities",
}  # fmt: skip
CHAT_REQUEST: Schema = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {
                    "role": {"enum": ["system", "user", "assistant"]},
                    "content": {"type": "string"},
                },
            },
        },
        "stream": {"type": "boolean"},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "n": {"type": "integer", "minimum": 1, "maximum": 128},
        "stream_options": {
            "type": "object",
            "properties": {"include_usage": {"type": "boolean"}, "include_obfuscation": {"type": "boolean"}},
            "additionalProperties": False,
        },
        "service_tier": {"enum": ["auto", "default", None]},
        "modalities": {"anyOf": [{"const": ["text"]}, {"type": "null"}]},
        # the other fields the proxy accepts, undescribed: the list is chat's own allowlist
        **{name: {} for name in sorted(chat_adapter.ALLOWED_FIELDS) if name not in _DESCRIBED_CHAT_FIELDS},
    },
    "additionalProperties": False,
    "description": "OpenAI's chat completion request. Only the fields listed are accepted (passed to the"
    " provider as OpenAI defines them); any other is a 400 `unsupported_parameter`, since its cost"
    " could not be metered.",
}
MESSAGES_REQUEST: Schema = {
    "type": "object",
    "required": ["model", "messages", "max_tokens"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {"role": {"enum": ["user", "assistant"]}, "content": {"type": "string"}},
            },
        },
        "max_tokens": {"type": "integer", "minimum": 1},
        "stream": {"type": "boolean"},
        "system": {"type": "string"},
        "service_tier": {"enum": list(messages_adapter.SERVICE_TIERS)},
        **{
            name: {}
            for name in sorted(messages_adapter.ALLOWED_FIELDS)
            if name not in {"model", "messages", "max_tokens", "stream", "system", "service_tier"}
        },
    },
    "additionalProperties": False,
    "description": "Anthropic's Messages request. Only the fields listed are accepted (server tools,"
    " mcp_servers, container and other fields whose cost could not be metered are a 400).",
}
COUNT_TOKENS_REQUEST: Schema = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {"model": {"type": "string", "minLength": 1}, "messages": {"type": "array"}},
}
TEXTS_OR_TOKENS: Schema = {
    "anyOf": [
        {"type": "string"},
        {"type": "array", "minItems": 1, "maxItems": 2048, "items": {"type": "string"}},
        {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
        {
            "type": "array",
            "minItems": 1,
            "maxItems": 2048,
            "items": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
        },
    ]
}
EMBEDDINGS_REQUEST: Schema = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": TEXTS_OR_TOKENS,
        "dimensions": {"type": "integer", "minimum": 1},
        "encoding_format": {"enum": ["float", "base64"]},
        "user": {"type": "string"},
    },
    "additionalProperties": False,
    "description": "OpenAI's embeddings request (each string non-empty); any other field is a 400"
    " `unsupported_parameter`.",
}
EMBEDDINGS_RESPONSE = obj({"data": {"type": "array"}, "usage": {"type": "object"}})
_DESCRIBED_COMPLETIONS_FIELDS = {
    "model", "prompt", "stream", "max_tokens", "n", "best_of", "logprobs", "echo", "suffix", "stream_options",
}  # fmt: skip
COMPLETIONS_REQUEST: Schema = {
    "type": "object",
    "required": ["model", "prompt"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "prompt": TEXTS_OR_TOKENS,
        "stream": {"type": "boolean"},
        "max_tokens": {"type": "integer", "minimum": 0, "description": "16 when absent (OpenAI's default)"},
        "n": {"type": "integer", "minimum": 1, "maximum": 128},
        "best_of": {"type": "integer", "minimum": 1, "maximum": 20, "description": "at least n; not with stream"},
        "logprobs": {"type": "integer", "minimum": 0, "maximum": 5},
        "echo": {"type": "boolean"},
        "suffix": {"type": "string"},
        "stream_options": {
            "type": "object",
            "properties": {"include_usage": {"type": "boolean"}},
            "additionalProperties": False,
        },
        # the other fields the proxy accepts, undescribed: the list is the adapter's own allowlist
        **{
            name: {} for name in sorted(completions_adapter.ALLOWED_FIELDS) if name not in _DESCRIBED_COMPLETIONS_FIELDS
        },
    },
    "additionalProperties": False,
    "description": "OpenAI's legacy completions request; any other field is a 400 `unsupported_parameter`.",
}
CHAT_RESPONSE = obj({"id": {"type": "string"}, "choices": {"type": "array"}}, {"usage": {"type": "object"}})
_DESCRIBED_RESPONSES_FIELDS = {"model", "input", "stream", "max_output_tokens", "service_tier", "background", "tools"}
RESPONSES_REQUEST: Schema = {
    "type": "object",
    "required": ["model"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "stream": {"type": "boolean"},
        "max_output_tokens": {"type": "integer", "minimum": 1},
        "service_tier": {"enum": ["auto", "default", None]},
        "background": {"enum": [False, None]},
        "tools": {
            "type": "array",
            "items": {"type": "object", "required": ["type"], "properties": {"type": {"enum": ["function", "custom"]}}},
        },
        # the other fields the proxy accepts, undescribed: the list is the adapter's own allowlist
        **{name: {} for name in sorted(responses_adapter.ALLOWED_FIELDS) if name not in _DESCRIBED_RESPONSES_FIELDS},
    },
    "additionalProperties": False,
    "description": "OpenAI's Responses API request. Only the fields listed are accepted (passed to the"
    " provider as OpenAI defines them); any other, a built-in tool, `background: true` or a stored"
    " `prompt` is a 400 `unsupported_parameter`, since its cost could not be metered. `input` is"
    " required unless `previous_response_id` or `conversation` is given.",
}
RESPONSES_RESPONSE = obj({"id": {"type": "string"}, "output": {"type": "array"}}, {"usage": {"type": "object"}})
PAGE_PARAMS = [
    query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "rows per page (default 50)"),
    query("after", {"type": "integer", "minimum": 1}, "cursor: the next_cursor of the previous page"),
    query("from", TIME, "rows created at or after"),
    query("to", TIME, "rows created before"),
]
ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}]
GATEWAY: list[dict[str, list[str]]] = [{"gatewayKey": []}]
ANTHROPIC_KEY: list[dict[str, list[str]]] = [{"gatewayKey": []}, {"anthropicKey": []}]


def op(summary: str, resp: Schema, *, security: list[Any] | None = None, **more: Any) -> Schema:
    operation: Schema = {"summary": summary, "responses": resp, **more}
    if security is not None:
        operation["security"] = security
    return operation


def v1(summary: str, ok: dict[int, Schema], *errors: int, **more: Any) -> Schema:
    return op(summary, responses(ok, 401, *errors), security=GATEWAY, **more)


def adm(summary: str, ok: dict[int, Schema], *errors: int, **more: Any) -> Schema:
    return op(summary, responses(ok, 401, 404, *errors), security=ADMIN, **more)


def metered(summary: str, answer: str, request: Schema, response: Schema, *, streams: bool = True) -> Schema:
    """A metered endpoint's operation: its answer as JSON (or server-sent events, when it `streams`),
    the refusals of the gateway, and the provider's own refusals passed through."""
    content: Schema = {"application/json": {"schema": response}}
    if streams:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    return op(
        summary,
        {
            "200": {
                "description": answer,
                "content": content,
            },
            **responses({}, 401, 402, 404, 502, 504),
            "4XX": {
                "description": "The provider's own refusal of the request, passed through; nothing charged",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
        },
        security=GATEWAY,
        requestBody={"required": True, "content": {"application/json": {"schema": request}}},
        parameters=[
            {
                "name": "X-Power-Level",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "a power level other than the account's",
            }
        ],
    )


def build_document() -> Schema:
    paths: Schema = {
        "/healthz": {"get": op("The process answers", {"200": json_body(obj({"status": {"const": "ok"}}), "Up")})},
        "/readyz": {
            "get": op(
                "The database answers and no migration is pending",
                {
                    "200": json_body(obj({"status": {"const": "ready"}}), "Ready"),
                    "503": json_body(
                        obj({"status": {"const": "unavailable"}, "reason": {"type": "string"}}), "Not ready"
                    ),
                },
            )
        },
        "/metrics": {
            "get": op(
                "Prometheus metrics",
                {"200": {"description": "Prometheus text", "content": {"text/plain": {"schema": {"type": "string"}}}}},
            )
        },
        "/openapi.json": {"get": op("This document", {"200": json_body({"type": "object"}, "OpenAPI 3.1")})},
        "/v1/chat/completions": {
            "post": metered(
                "The metered chat completion (OpenAI's API), streamed or not",
                "The completion, with usage.cost in credits; or its server-sent events",
                CHAT_REQUEST,
                CHAT_RESPONSE,
            )
        },
        "/v1/responses": {
            "post": metered(
                "The metered response (OpenAI's Responses API), streamed or not",
                "The response, with usage.cost in credits; or its server-sent events, the final"
                " response.completed (or .incomplete, .failed) carrying the usage charged",
                RESPONSES_REQUEST,
                RESPONSES_RESPONSE,
            )
        },
        "/v1/messages": {
            "post": op(
                "The metered message (Anthropic's Messages API), streamed or not",
                {
                    "200": {
                        "description": "The message, with usage.cost in credits; or its server-sent events",
                        "content": {
                            "application/json": {
                                "schema": obj({"id": {"type": "string"}, "content": {"type": "array"}})
                            },
                            "text/event-stream": {"schema": {"type": "string"}},
                        },
                    },
                    **anthropic_responses({}, 402, 404, 502, 504),
                },
                security=ANTHROPIC_KEY,
                requestBody={"required": True, "content": {"application/json": {"schema": MESSAGES_REQUEST}}},
                parameters=ANTHROPIC_HEADERS,
            )
        },
        "/v1/messages/count_tokens": {
            "post": op(
                "The provider's count of a prompt's tokens; free: nothing held or charged",
                anthropic_responses({200: obj({"input_tokens": {"type": "integer"}})}, 404, 502),
                security=ANTHROPIC_KEY,
                requestBody={"required": True, "content": {"application/json": {"schema": COUNT_TOKENS_REQUEST}}},
                parameters=ANTHROPIC_HEADERS,
            )
        },
        "/v1/completions": {
            "post": metered(
                "The metered legacy completion (OpenAI's API), streamed or not",
                "The completion, with usage.cost in credits; or its server-sent events",
                COMPLETIONS_REQUEST,
                CHAT_RESPONSE,
            )
        },
        "/v1/embeddings": {
            "post": metered(
                "The metered embeddings (OpenAI's API)",
                "The embeddings, with usage.cost in credits",
                EMBEDDINGS_REQUEST,
                EMBEDDINGS_RESPONSE,
                streams=False,
            )
        },
        "/v1/models": {"get": v1("Models some configured provider serves", {200: list_of({"type": "object"})})},
        "/v1/credits/balance": {"get": v1("The caller's balance, allowance, holds and subscription", {200: ACCOUNT})},
        "/v1/account": {
            "patch": v1(
                "Change the caller's default power level; answers the account as the balance shows it",
                {200: ACCOUNT},
                requestBody=model_body(account.AccountChange),
            )
        },
        "/v1/credits/transactions": {
            "get": v1(
                "The caller's transactions, newest first",
                {200: page_of(TRANSACTION)},
                parameters=[*PAGE_PARAMS, query("type", {"type": "string"}, "one transaction type")],
            )
        },
        "/v1/usage": {
            "get": v1(
                "The caller's metered requests, newest first",
                {200: page_of(USAGE_ROW)},
                parameters=[
                    *PAGE_PARAMS,
                    query("model", {"type": "string"}, "one model"),
                    query("project_id", UUID, "one project's requests"),
                ],
            )
        },
        "/v1/usage/daily": {
            "get": v1(
                "The caller's requests and credits per UTC day and model over the last `days` UTC days, today"
                " included (only day/model pairs with a request; by day, then model)",
                {200: DAILY_USAGE},
                parameters=[
                    query("days", {"type": "integer", "minimum": 1, "maximum": 90}, "UTC days (default 30)"),
                    query("group_by", {"type": "string", "enum": ["model", "project"]}, "model (default) or project"),
                ],
            )
        },
        "/v1/keys": {
            "get": v1(
                "The caller's own gateway keys, active and revoked, newest first (never a key)", {200: list_of(OWN_KEY)}
            ),
            "post": v1(
                "A new gateway key for the caller (shown once); 409 too_many_keys while it holds 25 usable keys",
                {201: NEW_KEY},
                409,
                requestBody=model_body(keys.NewOwnKey),
            ),
        },
        "/v1/keys/{key_id}": {
            "delete": v1(
                "Revoke one of the caller's own keys (the calling one too); any other id is a 404",
                {200: obj({"id": {"type": "string"}, "revoked": {"const": True}})},
                404,
                parameters=[path("key_id")],
            )
        },
        "/v1/provider-keys": {
            "get": v1("The caller's BYOK keys (hints only)", {200: list_of(PROVIDER_KEY)}),
            "post": v1(
                "Store a BYOK key, encrypted",
                {201: PROVIDER_KEY},
                409,
                requestBody=model_body(provider_keys.NewProviderKey),
            ),
        },
        "/v1/provider-keys/{key_id}": {
            "delete": v1(
                "Delete one of the caller's BYOK keys",
                {200: obj({"id": {"type": "string"}, "deleted": {"const": True}})},
                404,
                parameters=[path("key_id")],
            )
        },
        "/v1/credits/packages": {"get": v1("Credit packages on sale", {200: list_of(PACKAGE)})},
        "/v1/credits/checkout": {
            "post": v1(
                "A Stripe Checkout session for a credit package",
                {201: obj({"id": {"type": "string"}, "url": {"type": "string"}})},
                404,
                502,
                requestBody=model_body(purchases.CreditCheckout),
            )
        },
        "/v1/subscriptions/checkout": {
            "post": v1(
                "A Stripe Checkout session for a monthly subscription; a caller who has a paid"
                " subscription is a 409 (change its tier instead)",
                {201: obj({"id": {"type": "string"}, "url": {"type": "string"}})},
                404,
                409,
                502,
                requestBody=model_body(purchases.SubscriptionCheckout),
            )
        },
        "/v1/subscriptions/change": {
            "post": v1(
                "Move the caller's paid subscription to another tier (prorated by Stripe); the tier changes"
                " when Stripe's customer.subscription.updated webhook arrives",
                {
                    200: obj(
                        {
                            "id": {"type": "string"},
                            "tier": {"type": "string", "enum": ["starter", "professional", "enterprise"]},
                            "previous_tier": {"type": "string"},
                            "status": {"const": "pending_webhook"},
                        }
                    )
                },
                409,
                502,
                requestBody=model_body(purchases.TierChange),
            )
        },
        "/webhooks/stripe": {
            "post": op(
                "Stripe's events, signed (Stripe-Signature)",
                responses({200: obj({"received": {"const": True}, "status": {"type": "string"}})}, 409),
                requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                parameters=[
                    {"name": "Stripe-Signature", "in": "header", "required": True, "schema": {"type": "string"}}
                ],
            )
        },
        "/admin/users": {
            "post": adm("Create an account", {201: ACCOUNT}, requestBody=model_body(admin.NewUser)),
        },
        "/admin/users/{user_id}/keys": {
            "post": adm(
                "Create a gateway key (shown once)",
                {201: obj({"id": UUID, "key": {"type": "string"}, "prefix": {"type": "string"}})},
                parameters=[path("user_id", UUID)],
                requestBody=model_body(admin.NewKey),
            )
        },
        "/admin/users/{user_id}/credits": {
            "post": adm(
                "Grant (or, a negative admin_adjustment, remove) credits",
                {200: GRANT},
                409,
                parameters=[path("user_id", UUID)],
                requestBody=model_body(admin.CreditGrant),
            )
        },
        "/admin/users/{user_id}": {
            "get": adm("An account", {200: ACCOUNT}, parameters=[path("user_id", UUID)]),
            "patch": adm(
                "Change an account's tier or power level",
                {200: ACCOUNT},
                parameters=[path("user_id", UUID)],
                requestBody=model_body(admin.UserChange),
            ),
        },
        "/admin/keys": {
            "get": adm(
                "Gateway keys by owner or visible prefix",
                {200: list_of(GATEWAY_KEY)},
                parameters=[
                    query("user_id", UUID, "the owner"),
                    query("prefix", {"type": "string"}, "the start of the visible part"),
                ],
            )
        },
        "/admin/keys/{key_id}": {
            "delete": adm(
                "Revoke a gateway key",
                {200: obj({"id": {"type": "string"}, "revoked": {"const": True}})},
                parameters=[path("key_id", UUID)],
            )
        },
        "/admin/packages": {
            "get": adm(
                "Credit packages",
                {200: list_of(PACKAGE)},
                parameters=[query("all", {"type": "string"}, "present: inactive ones too")],
            ),
            "post": adm("Add a credit package", {201: PACKAGE}, 409, requestBody=model_body(admin.NewPackage)),
        },
        "/admin/packages/{package_id}": {
            "patch": adm(
                "Change a credit package",
                {200: PACKAGE},
                409,
                parameters=[path("package_id", UUID)],
                requestBody=model_body(admin.PackageChange),
            )
        },
        "/admin/model-prices": {
            "get": adm(
                "Model prices",
                {200: list_of(PRICE)},
                parameters=[query("all", {"type": "string"}, "present: inactive ones too")],
            ),
            "post": adm("Add a model price", {201: PRICE}, 409, requestBody=model_body(admin.NewPrice)),
        },
        "/admin/model-prices/sync": {
            "post": adm(
                "Import or update model prices from genai-prices' catalog (rows an operator changed are kept "
                "unless force)",
                {200: PRICE_SYNC_REPORT},
                requestBody=model_body(admin.PriceSync),
            )
        },
        "/admin/model-prices/{provider}/{model}": {
            "patch": adm(
                "Change a model price",
                {200: PRICE},
                409,
                parameters=[path("provider"), path("model")],
                requestBody=model_body(admin.PriceChange),
            )
        },
    }
    # the administration API's operations live in their own module, which builds on this one's helpers
    from api.openapi_organization import PATHS as ORGANIZATION_PATHS
    from api.openapi_organization import SECURITY_SCHEME as ADMIN_KEY_SCHEME

    paths.update(ORGANIZATION_PATHS)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Credit ledger",
            "version": "1",
            "description": "Prepaid credits for an LLM gateway. Amounts are decimal strings; errors are OpenAI's "
            "shape. Every endpoint may answer 503 with Retry-After while its database is unreachable.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR, "AnthropicError": ANTHROPIC_ERROR},
            "securitySchemes": {
                "gatewayKey": {"type": "http", "scheme": "bearer", "description": "a gateway key, sk-lg-..."},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "LEDGER_ADMIN_TOKEN"},
                "adminKey": ADMIN_KEY_SCHEME,
                "anthropicKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "a gateway key, as Anthropic's SDK sends it",
                },
            },
        },
    }


DOCUMENT = build_document()


async def openapi_json(_request: Request) -> Response:
    return LedgerJSONResponse(DOCUMENT)
