"""POST /v1/chat/completions: reserve, route, forward, settle.

1. The most the request can cost is held in one SQL call before any upstream call; not enough
   credits is a 402 and the upstream is never called.
2. Providers are tried in routing order; connect errors, timeouts, 429s and 5xx fall over.
3. The actual cost (upstream usage, else a local count) is settled in one SQL call that also
   writes the usage row; any failure releases the hold and logs the failure, charging nothing.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import Response

from api.auth import gateway_owner
from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.params import json_object
from api.streaming import MeteredStream
from ledger import byok
from ledger.gateway_keys import KeyOwner
from ledger.holds import Reservation, reserve_credits
from ledger.logs import request_id_var
from ledger.metering import Charge, UsageRecord, fail_request, settle_request
from ledger.routing import Route, Tariff, plan_routes
from ledger.tokens import completion_tokens_estimate, prompt_tokens_estimate, prompt_tokens_upper_bound
from ledger.upstream import AllProvidersFailed, StreamMeter, open_first

log = logging.getLogger("ledger.proxy")


@dataclass(frozen=True, slots=True)
class ChatRequest:
    body: dict[str, Any]
    model: str
    messages: list[Any]
    stream: bool
    max_tokens: int | None
    wants_usage: bool
    replies: int  # `n`: how many choices the upstream generates
    # prompt material beside the messages (tool and function definitions, a response schema)
    extra_prompt: dict[str, Any]


def parse_chat_request(raw: bytes) -> ChatRequest:
    body = json_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required and must be a string.", param="model", code="missing_model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ApiError(
            400,
            "'messages' must be a non-empty array of message objects.",
            param="messages",
            code="invalid_messages",
        )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be a boolean.", param="stream", code="invalid_stream")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ApiError(400, "'max_tokens' must be a positive integer.", param="max_tokens", code="invalid_max_tokens")
    replies = body.get("n", 1)
    if replies is None:
        replies = 1
    if isinstance(replies, bool) or not isinstance(replies, int) or not 1 <= replies <= 128:
        raise ApiError(400, "'n' must be a whole number from 1 to 128.", param="n", code="invalid_n")
    options = body.get("stream_options") or {}
    wants_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    extra = {key: body[key] for key in ("tools", "functions", "response_format") if body.get(key)}
    return ChatRequest(body, model, messages, stream, max_tokens, wants_usage, replies, extra)


def _upstream_body(chat: ChatRequest) -> dict[str, Any]:
    if not chat.stream:
        return chat.body
    options = chat.body.get("stream_options") or {}
    return {**chat.body, "stream_options": {**options, "include_usage": True}}


def _reply_text(payload: dict[str, Any]) -> str:
    parts = []
    for choice in payload.get("choices") or []:
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):
            parts.append(message["content"])
        for call in message.get("tool_calls") or []:
            parts.append(str((call.get("function") or {}).get("arguments", "")))
    return "".join(parts)


def _tokens(reported: dict[str, Any] | None, key: str, fallback: int) -> int:
    value = (reported or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else fallback


def _credit_headers(request_id: str, charge: Charge) -> dict[str, str]:
    return {
        "x-request-id": request_id,
        "x-credits-charged": str(charge.charged),
        "x-credits-remaining": "unlimited" if charge.available is None else str(charge.available),
    }


class MeteredRequest:
    """One request's journey from its hold to its settlement."""

    def __init__(
        self,
        request: Request,
        owner: KeyOwner,
        chat: ChatRequest,
        tariff: Tariff,
        power_level: str,
        routes: list[Route],
    ) -> None:
        self.app = request.app
        self.pool = request.app.state.pool
        self.chat = chat
        self.tariff = tariff
        self.routes = routes
        self.request_id = request_id_var.get() or f"req_{uuid.uuid4().hex}"
        self.metrics = request.app.state.metrics
        self.hold_id: uuid.UUID | None = None
        self.started = time.monotonic()  # reset when the request goes upstream
        self.usage = UsageRecord(
            request_id=self.request_id,
            user_id=owner.user_id,
            gateway_key_id=owner.key_id,
            model=chat.model,
            power_level=power_level,
            cost_multiplier=tariff.multiplier,
        )
        self.owner = owner

    def _elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    async def reserve(self) -> None:
        """Hold the most the request can cost. A user who cannot afford the platform's providers but
        holds BYOK keys is still served, by their own keys' providers only."""
        reservation = await self._hold(self.routes)
        own_keys = [route for route in self.routes if route.is_byok]
        if reservation is not None and not reservation.success and own_keys and own_keys != self.routes:
            self.routes = own_keys
            reservation = await self._hold(own_keys)
        if reservation is None:
            return  # nothing can be charged: nothing to hold
        if not reservation.success:
            self.metrics.insufficient.inc()
            most = self._most(self.routes)
            raise ApiError(
                402,
                f"Insufficient credits: this request can cost up to {most} credits and "
                f"{reservation.available} are available. Buy credits or lower max_tokens.",
                type="insufficient_quota",
                code="insufficient_quota",
                headers={"x-should-retry": "false"},
            )
        self.hold_id = reservation.hold_id

    def _most(self, routes: list[Route]) -> Decimal:
        prompt = prompt_tokens_upper_bound(self.chat.messages, self.chat.extra_prompt)
        return self.tariff.most_it_can_cost(routes, prompt, self.chat.max_tokens, self.chat.replies)

    async def _hold(self, routes: list[Route]) -> Reservation | None:
        most = self._most(routes)
        if most == 0:
            return None
        return await reserve_credits(
            self.pool,
            self.owner.user_id,
            most,
            self.request_id,
            ttl=timedelta(seconds=self.app.state.settings.hold_ttl_seconds),
            description=f"{self.chat.model} request in flight",
        )

    async def fail(self, status_code: int, error: str) -> None:
        self.usage.latency_ms = self._elapsed_ms()
        self.usage.status_code = status_code
        self.usage.error_message = error[:1000]
        with anyio.CancelScope(shield=True):
            await fail_request(self.pool, self.hold_id, self.usage)
        self.metrics.request_done(self.chat.model, self.usage.provider, status_code, Decimal(0), None)

    async def settle(self, route: Route, reported: dict[str, Any] | None, reply_text: str) -> Charge:
        prompt = _tokens(reported, "prompt_tokens", prompt_tokens_estimate(self.chat.messages, self.chat.extra_prompt))
        completion = _tokens(reported, "completion_tokens", completion_tokens_estimate(reply_text))
        usd = self.tariff.usd(route, prompt, completion)
        self.usage.prompt_tokens, self.usage.completion_tokens, self.usage.cost_usd = prompt, completion, usd
        self.usage.latency_ms = self._elapsed_ms()
        self.usage.status_code = self.usage.status_code or 200
        with anyio.CancelScope(shield=True):
            charge = await settle_request(self.pool, self.hold_id, self.tariff.credits(route, usd), self.usage)
            if route.byok_key is not None:
                await byok.mark_used(self.pool, route.byok_key.id)
        self.metrics.request_done(
            self.chat.model, route.provider, self.usage.status_code, charge.charged, self.usage.latency_ms / 1000
        )
        return charge

    async def forward(self) -> Response:
        self.started = time.monotonic()  # latency is the upstream's: from the first attempt to the answer's end
        try:
            route, response = await open_first(
                self.app.state.http, self.routes, _upstream_body(self.chat), stream=self.chat.stream
            )
        except AllProvidersFailed as exc:
            await self.fail(502, f"all providers failed: {exc}")
            raise ApiError(
                502,
                f"No provider could serve the request ({exc}). Nothing was charged.",
                type="upstream_error",
                code="upstream_unavailable",
            ) from None
        except BaseException:
            await self.fail(500, "request aborted before an upstream answered")
            raise
        self.usage.provider, self.usage.is_byok = route.provider, route.is_byok
        if response.status_code in (401, 403) and route.is_byok:
            await self.fail(response.status_code, f"{route.provider} refused the user's own key")
            raise ApiError(
                400,
                f"{route.provider} refused your own API key (HTTP {response.status_code}). Update it"
                " with POST /v1/provider-keys or delete it to use the platform's. Nothing was charged.",
                code="provider_key_rejected",
            )
        if response.status_code >= 400:
            await self.fail(response.status_code, response.text)
            return Response(
                response.content,
                status_code=response.status_code,
                media_type=response.headers.get("content-type", "application/json"),
                headers={"x-request-id": self.request_id},
            )
        if self.chat.stream:
            return self._stream(route, response)
        return await self._complete(route, response)

    async def _complete(self, route: Route, response: httpx.Response) -> Response:
        try:
            payload = response.json()
            if not isinstance(payload, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError):
            await self.fail(502, f"{route.provider} answered 200 with a body that is not a JSON object")
            raise ApiError(
                502,
                "The provider's answer was not valid JSON. Nothing was charged.",
                type="upstream_error",
                code="upstream_invalid_response",
            ) from None
        reported = payload.get("usage") if isinstance(payload.get("usage"), dict) else None
        charge = await self.settle(route, reported, _reply_text(payload))
        payload["usage"] = {
            **(reported or {}),
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "total_tokens": self.usage.prompt_tokens + self.usage.completion_tokens,
            "cost": str(charge.charged),
        }
        return LedgerJSONResponse(payload, headers=_credit_headers(self.request_id, charge))

    def _stream(self, route: Route, response: httpx.Response) -> Response:
        meter = StreamMeter(
            client_wants_usage=self.chat.wants_usage,
            cost_of=lambda usage: self.tariff.credits(
                route,
                self.tariff.usd(route, _tokens(usage, "prompt_tokens", 0), _tokens(usage, "completion_tokens", 0)),
            ),
        )
        broke: list[str] = []

        async def events() -> Any:
            lines: list[str] = []
            try:
                async for line in response.aiter_lines():
                    if line:
                        lines.append(line)
                        continue
                    if (out := meter.event(lines)) is not None:
                        yield out
                    lines = []
                if lines and (out := meter.event(lines)) is not None:
                    yield out
            except httpx.TransportError as exc:
                broke.append(type(exc).__name__)
                error = {
                    "error": {
                        "message": f"The provider's stream broke ({type(exc).__name__}); "
                        "you are billed for what was generated.",
                        "type": "upstream_error",
                        "code": "upstream_stream_broken",
                    }
                }
                yield f"data: {json.dumps(error)}\n\n".encode()

        async def finish(disconnected: bool) -> None:
            await response.aclose()
            if broke:
                status, reason = 502, f"upstream stream broke: {broke[0]}"
            elif disconnected and not meter.done:
                status, reason = 499, "client disconnected mid-stream"
            else:
                status, reason = 200, None
            if meter.chunks == 0:  # nothing reached us, so nothing was delivered: charge nothing
                await self.fail(status if reason else 502, reason or "stream ended with no data")
                return
            if reason:
                self.usage.success, self.usage.status_code, self.usage.error_message = False, status, reason
            await self.settle(route, meter.usage, meter.generated_text)

        return MeteredStream(events(), finish, headers={"x-request-id": self.request_id})


async def chat_completions(request: Request) -> Response:
    state = request.app.state
    owner = await gateway_owner(request)
    chat = parse_chat_request(await request.body())

    level_name = request.headers.get("x-power-level") or owner.power_level
    snapshot = await state.catalog.get(state.pool)
    level = snapshot.power_levels.get(level_name)
    if level is None:
        known = ", ".join(sorted(snapshot.power_levels))
        raise ApiError(
            400,
            f"Unknown power level '{level_name}'. Known: {known}.",
            param="X-Power-Level",
            code="invalid_power_level",
        )

    byok_keys: dict[str, byok.ProviderKey] = {}
    if owner.has_byok and state.cipher is not None:
        byok_keys = await byok.active_keys(state.pool, state.cipher, owner.user_id)
    routes = plan_routes(snapshot, state.providers, chat.model, level, byok_keys)
    if not routes:
        raise ApiError(
            404,
            f"The model '{chat.model}' does not exist or no configured provider serves it.",
            param="model",
            code="model_not_found",
        )

    settings = state.settings
    tariff = Tariff(settings.usd_per_credit, Decimal(level.cost_multiplier), settings.byok_fee_ratio)
    metered = MeteredRequest(request, owner, chat, tariff, level.name, routes)
    await metered.reserve()
    return await metered.forward()
