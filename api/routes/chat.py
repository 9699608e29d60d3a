"""POST /v1/chat/completions: reserve, route, forward, settle.

1. The most the request can cost is held in one SQL call before any upstream call; not enough
   credits is a 402 and the upstream is never called. The max_tokens each upstream receives is the
   one its hold was computed for.
2. Providers are tried in routing order; connect errors, timeouts, 429s and 5xx fall over.
3. The actual cost is settled in one SQL call that also writes the usage row. The upstream's usage
   is believed only within the bounds the request implies (ledger.gateway.tokens.bounded_usage); what falls
   outside is charged at the bound and recorded as an anomaly. The charge never exceeds the hold.
   A failure before anything was delivered releases the hold and logs the failure, charging nothing.
"""

from __future__ import annotations

import asyncio
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
from ledger.gateway import byok
from ledger.gateway.keys import KeyOwner
from ledger.gateway.routing import Route, Tariff, plan_routes, reply_cap
from ledger.gateway.tokens import (
    CountedUsage,
    TokenBounds,
    UnboundedPart,
    bounded_usage,
    check_parts,
    completion_tokens_estimate,
    prompt_tokens_estimate,
    prompt_tokens_floor,
    prompt_tokens_upper_bound,
    upstream_json,
    words,
)
from ledger.gateway.upstream import AllProvidersFailed, StreamMeter, UpstreamBodyTooLarge, finite, open_first, sse_lines
from ledger.logs import request_id_var
from ledger.money.holds import Reservation
from ledger.money.usage import (
    CONNECTION_ERRORS,
    Charge,
    UsageRecord,
    extend_hold,
    fail_request,
    reserve_request,
    retry_in_background,
    settle_request,
)

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


def _positive_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ApiError(400, f"'{key}' must be a positive integer.", param=key, code="invalid_max_tokens")
    return value


# The OpenAI chat-completions fields the service can bound (what they cost is within the hold and
# the settle's bounds). Any other field is refused: passed through, it could buy an unpriced model
# (OpenRouter's `models`, `route`), paid tools (`plugins`, `web_search_options`), a dearer tier
# (`service_tier: priority`), audio output, or unbilled tokens (`prediction`, `best_of`).
ALLOWED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "temperature",
        "top_p",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "seed",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "response_format",
        "reasoning_effort",
        "metadata",
        "store",
        "prompt_cache_key",
        "safety_identifier",
        "verbosity",
        "service_tier",
        "modalities",
    }
)
# Fields allowed only with these values (None: the field sent as null).
ALLOWED_VALUES: dict[str, list[Any]] = {
    "service_tier": [None, "auto", "default"],
    "modalities": [None, ["text"]],
}
STREAM_OPTIONS = frozenset({"include_usage", "include_obfuscation"})


def _unsupported(param: str, why: str) -> ApiError:
    return ApiError(400, f"Unsupported parameter: '{param}' {why}.", param=param, code="unsupported_parameter")


def _check_fields(body: dict[str, Any]) -> None:
    for key in body:
        if key not in ALLOWED_FIELDS:
            raise _unsupported(key, "is not supported by this gateway: its cost could not be metered")
    for key, allowed in ALLOWED_VALUES.items():
        if key in body and body[key] not in allowed:
            shown = ", ".join(json.dumps(value) for value in allowed if value is not None)
            raise _unsupported(key, f"may only be {shown} here")
    tools = body.get("tools")
    for index, tool in enumerate(tools if isinstance(tools, list) else []):
        # a provider's built-in tools (web search, code interpreter) are billed per call: only the
        # caller's own functions, which cost their tokens
        if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom"):
            raise _unsupported(
                f"tools[{index}].type", "must be 'function' or 'custom' (built-in tools cannot be metered)"
            )
    options = body.get("stream_options")
    if isinstance(options, dict):
        for key in options:
            if key not in STREAM_OPTIONS:
                raise _unsupported(f"stream_options.{key}"[:200], "is not supported by this gateway")


def _check_size(raw: bytes, most: int) -> None:
    """Refuses, before it is parsed, a body with more JSON values than any real prompt has: parsing
    16 million tiny values takes seconds of the event loop and gigabytes. Counting separators is
    done at C speed; a long text prompt has about one comma per 60 bytes."""
    separators = raw.count(b",") + raw.count(b":")
    if separators > most:
        raise ApiError(
            413,
            f"The request body has {separators} JSON separators (',' and ':'); at most {most} are accepted.",
            code="request_too_complex",
        )


def parse_chat_request(raw: bytes, max_separators: int) -> ChatRequest:
    _check_size(raw, max_separators)
    body = json_object(raw)
    _check_fields(body)
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
    try:
        check_parts(messages)
    except UnboundedPart as exc:
        raise ApiError(400, str(exc), param=exc.param, code="unsupported_content_part") from None
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be a boolean.", param="stream", code="invalid_stream")
    completion_cap = _positive_int(body, "max_completion_tokens")
    legacy_cap = _positive_int(body, "max_tokens")
    # both sent: the smaller binds (the upstream receives the smaller in both fields)
    caps = [cap for cap in (completion_cap, legacy_cap) if cap is not None]
    max_tokens = min(caps) if caps else None
    replies = body.get("n", 1)
    if replies is None:
        replies = 1
    if isinstance(replies, bool) or not isinstance(replies, int) or not 1 <= replies <= 128:
        raise ApiError(400, "'n' must be a whole number from 1 to 128.", param="n", code="invalid_n")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise ApiError(
            400, "'stream_options' must be an object.", param="stream_options", code="invalid_stream_options"
        )
    include_usage = (options or {}).get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise ApiError(
            400,
            "'stream_options.include_usage' must be a boolean.",
            param="stream_options.include_usage",
            code="invalid_stream_options",
        )
    wants_usage = stream and include_usage is True
    extra = {key: body[key] for key in ("tools", "functions", "response_format") if body.get(key)}
    return ChatRequest(body, model, messages, stream, max_tokens, wants_usage, replies, extra)


def _upstream_body(chat: ChatRequest, route: Route) -> dict[str, Any]:
    """The body for one route: its max_tokens is the hold's, in the field(s) the client used
    (`max_tokens` when the client sent neither: the field every OpenAI-compatible server reads)."""
    body = dict(chat.body)
    cap = reply_cap(route, chat.max_tokens)
    fields = [key for key in ("max_completion_tokens", "max_tokens") if body.get(key) is not None]
    for key in fields or ["max_tokens"]:
        body[key] = cap
    if chat.stream:
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return body


def _reply_texts(payload: dict[str, Any]) -> list[str]:
    texts = []
    choices = payload.get("choices")
    for choice in choices if isinstance(choices, list) else []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        parts = [message[key] for key in ("content", "refusal") if isinstance(message.get(key), str)]
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                parts.extend(str(function.get(key, "")) for key in ("name", "arguments"))
        texts.append(" ".join(parts))
    return texts


def _credit_headers(request_id: str, charge: Charge) -> dict[str, str]:
    remaining = "unlimited" if charge.available is None else str(charge.available)
    if charge.pending:
        remaining = "pending"
    return {"x-request-id": request_id, "x-credits-charged": str(charge.charged), "x-credits-remaining": remaining}


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
        self.settings = request.app.state.settings
        self.chat = chat
        self.tariff = tariff
        self.routes = routes
        self.request_id = request_id_var.get() or f"req_{uuid.uuid4().hex}"
        self.metrics = request.app.state.metrics
        self.hold_id: uuid.UUID | None = None
        self.held = Decimal(0)
        self.ended = False  # settled or failed: a request ends once
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

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.hold_ttl_seconds)

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
        self.held = self._most(self.routes)

    def _most(self, routes: list[Route]) -> Decimal:
        prompt = prompt_tokens_upper_bound(self.chat.messages, self.chat.extra_prompt)
        return self.tariff.most_it_can_cost(routes, prompt, self.chat.max_tokens, self.chat.replies)

    async def _hold(self, routes: list[Route]) -> Reservation | None:
        most = self._most(routes)
        if most == 0:
            return None
        return await reserve_request(
            self.pool, self.owner.user_id, most, self.ttl, f"{self.chat.model} request in flight", self.usage
        )

    async def keep_hold(self) -> None:
        """Keeps the hold open while the request lives (called every third of the hold's TTL)."""
        if self.hold_id is None or self.ended:
            return
        if not await extend_hold(self.pool, self.hold_id, self.ttl):
            log.warning("hold %s of %s was no longer open to extend", self.hold_id, self.request_id)

    async def _keep_hold_every_third_of_its_ttl(self) -> None:
        while True:
            await asyncio.sleep(self.settings.hold_ttl_seconds / 3)
            try:
                await self.keep_hold()
            except Exception:
                log.exception("could not extend the hold of %s; trying again next time", self.request_id)

    async def fail(self, status_code: int, error: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.usage.latency_ms = self._elapsed_ms()
        self.usage.status_code = status_code
        self.usage.error_message = error[:1000]
        self.usage.success = False
        hold_id, usage = self.hold_id, self.usage
        with anyio.CancelScope(shield=True):
            try:
                await fail_request(self.pool, hold_id, usage)
            except CONNECTION_ERRORS as exc:
                log.warning("releasing %s lost the database (%s); retrying", self.request_id, type(exc).__name__)
                retry_in_background(
                    f"release of {self.request_id}",
                    lambda: fail_request(self.pool, hold_id, usage),
                    give_up_after=self.settings.hold_ttl_seconds,
                )
        self.metrics.request_done(self.chat.model, self.usage.provider, status_code, Decimal(0), None)

    def bounds(self, route: Route, completion_floor: int, reply_text: str) -> TokenBounds:
        messages, extra = self.chat.messages, self.chat.extra_prompt
        return TokenBounds(
            prompt_floor=prompt_tokens_floor(messages),
            prompt_ceiling=prompt_tokens_upper_bound(messages, extra, route.price.context_window),
            completion_floor=completion_floor,
            completion_ceiling=self.chat.replies * reply_cap(route, self.chat.max_tokens),
            prompt_estimate=prompt_tokens_estimate(messages, extra),
            completion_estimate=completion_tokens_estimate(reply_text),
        )

    async def settle(self, route: Route, reported: Any, reply_text: str, delivered_words: int) -> Charge:
        """Charge what the request used, within its bounds and never above its hold; always ends
        with one usage row and the hold settled or released (or, if the database is down, a
        settle retried in the background: the Charge says `pending`)."""
        self.ended = True
        counted = bounded_usage(reported, self.bounds(route, delivered_words, reply_text))
        if counted.anomaly:
            self.metrics.usage_anomalies.labels(route.provider).inc()
            log.warning("usage anomaly on %s from %s: %s", self.request_id, route.provider, counted.anomaly)
        usd = self.tariff.usd(route, counted.prompt_tokens, counted.completion_tokens)
        credits = self.tariff.credits(route, usd)
        if self.hold_id is None:
            credits = Decimal(0)
        elif credits > self.held:  # cannot happen while the hold and the bounds agree; kept as a fuse
            counted = CountedUsage(
                counted.prompt_tokens,
                counted.completion_tokens,
                "; ".join(filter(None, [counted.anomaly, f"cost {credits} above the hold {self.held}"])),
                counted.reported,
            )
            credits = self.held
        usage = self.usage
        usage.prompt_tokens, usage.completion_tokens, usage.cost_usd = (
            counted.prompt_tokens,
            counted.completion_tokens,
            usd,
        )
        usage.usage_anomaly, usage.reported_usage = counted.anomaly, counted.reported
        usage.cost_multiplier = self.tariff.multiplier_for(route)
        usage.latency_ms = self._elapsed_ms()
        usage.status_code = usage.status_code or 200
        hold_id = self.hold_id
        with anyio.CancelScope(shield=True):
            try:
                charge = await settle_request(self.pool, hold_id, credits, usage)
            except CONNECTION_ERRORS as exc:
                log.warning("settling %s lost the database (%s); retrying", self.request_id, type(exc).__name__)
                retry_in_background(
                    f"settle of {self.request_id}",
                    lambda: settle_request(self.pool, hold_id, credits, usage),
                    give_up_after=self.settings.hold_ttl_seconds,
                )
                charge = Charge(credits, Decimal(0), Decimal(0), None, None, pending=True)
            except Exception:
                log.exception("settling %s failed; releasing its hold instead", self.request_id)
                usage.success, usage.error_message = False, "the settle failed; nothing was charged"
                try:
                    await fail_request(self.pool, hold_id, usage)
                except Exception:
                    log.exception("releasing %s failed too; its hold's expiry writes its usage row", self.request_id)
                charge = Charge(Decimal(0), Decimal(0), Decimal(0), None, None, pending=True)
            if route.byok_key is not None:
                try:
                    await byok.mark_used(self.pool, route.byok_key.id)
                except Exception:
                    log.exception("could not mark the BYOK key of %s used", self.request_id)
        self.metrics.request_done(
            self.chat.model, route.provider, usage.status_code or 200, charge.charged, usage.latency_ms / 1000
        )
        return charge

    async def forward(self) -> Response:
        self.started = time.monotonic()  # latency is the upstream's: from the first attempt to the answer's end
        # the hold must outlive a slow upstream too (a provider timeout above the hold's TTL)
        keeping = asyncio.create_task(self._keep_hold_every_third_of_its_ttl())
        try:
            route, response = await open_first(
                self.app.state.http,
                self.routes,
                lambda route: _upstream_body(self.chat, route),
                stream=self.chat.stream,
                max_body=self.settings.max_upstream_body_bytes,
            )
        except UpstreamBodyTooLarge as exc:
            self.usage.provider, self.usage.is_byok = exc.route.provider, exc.route.is_byok
            raise await self._upstream_failure(
                str(exc),
                "The provider's answer was larger than this gateway reads.",
                "upstream_invalid_response",
            ) from None
        except AllProvidersFailed as exc:
            raise await self._upstream_failure(
                f"all providers failed: {exc}",
                f"No provider could serve the request ({exc}).",
                "upstream_unavailable",
            ) from None
        except BaseException:
            await self.fail(500, "request aborted before an upstream answered")
            raise
        finally:
            keeping.cancel()
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
            return await self._stream(route, response)
        return await self._complete(route, response)

    async def _upstream_failure(self, reason: str, message: str, code: str) -> ApiError:
        """The provider failed before anything reached the client: the hold is released, a failed
        usage row (502, `reason`) written, and the client gets a 502 saying nothing was charged."""
        await self.fail(502, reason)
        return ApiError(502, f"{message} Nothing was charged.", type="upstream_error", code=code)

    async def _not_a_stream(self, route: Route, response: httpx.Response, what: str) -> ApiError:
        """A streamed request the provider did not answer with an SSE chat stream (an empty body,
        HTML, a plain JSON completion from a provider that ignores `stream`): nothing reached the
        client, so it is a 502 and nothing is charged."""
        await response.aclose()
        return await self._upstream_failure(
            f"{route.provider} answered a streamed request with {what}",
            f"The provider answered the streamed request with {what}, not an event stream.",
            "upstream_invalid_response",
        )

    async def _complete(self, route: Route, response: httpx.Response) -> Response:
        try:
            raw = upstream_json(response.content)
            payload = finite(raw)
            if not isinstance(payload, dict):
                raise TypeError("not an object")
            json.dumps(payload)  # what cannot be sent back (nested too deep) is refused before any charge
        except (ValueError, TypeError, RecursionError):
            raise await self._upstream_failure(
                f"{route.provider} answered 200 with a body that is not a JSON object",
                "The provider's answer was not valid JSON.",
                "upstream_invalid_response",
            ) from None
        reported = raw.get("usage")  # as reported (NaN included): judged by the settle
        texts = _reply_texts(payload)
        charge = await self.settle(route, reported, "\n".join(texts), sum(words(text) for text in texts))
        payload["usage"] = {
            **(finite(reported) if isinstance(reported, dict) else {}),
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "total_tokens": self.usage.prompt_tokens + self.usage.completion_tokens,
            "cost": str(charge.charged),
        }
        return LedgerJSONResponse(payload, headers=_credit_headers(self.request_id, charge))

    async def _stream(self, route: Route, response: httpx.Response) -> Response:
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type and media_type != "text/event-stream":
            raise await self._not_a_stream(route, response, f"a {media_type[:60]} body")
        meter = StreamMeter(client_wants_usage=self.chat.wants_usage)
        broke: list[str] = []
        yielded = False

        async def events() -> Any:
            nonlocal yielded
            lines: list[str] = []
            try:
                async for line in sse_lines(response):
                    if line:
                        lines.append(line)
                        continue
                    if (out := meter.event(lines)) is not None:
                        yielded = True
                        yield out
                    lines = []
                if lines and (out := meter.event(lines)) is not None:
                    yielded = True
                    yield out
            except httpx.TransportError as exc:
                broke.append(type(exc).__name__)
                if not yielded and meter.chunks == 0:  # nothing committed: a plain 502, nothing charged
                    await response.aclose()
                    raise await self._upstream_failure(
                        f"upstream stream broke before its first chunk: {broke[0]}",
                        f"The provider's stream broke ({broke[0]}) before its first chunk.",
                        "upstream_stream_broken",
                    ) from None
                error = {
                    "error": {
                        "message": f"The provider's stream broke ({type(exc).__name__}); "
                        "you are billed for what was generated.",
                        "type": "upstream_error",
                        "code": "upstream_stream_broken",
                    }
                }
                yield f"data: {json.dumps(error)}\n\n".encode()
                return
            if meter.chunks == 0:  # nothing was generated: no 200, and the hold is released
                what = f"{meter.skipped} events that are not chat chunks" if meter.skipped else "no chat chunk"
                raise await self._not_a_stream(route, response, what)
            # the upstream is done: settle, then tell the client what was charged
            charge = await self.settle(route, meter.usage, meter.generated_text, meter.words)
            if meter.skipped:
                self.metrics.usage_anomalies.labels(route.provider).inc()
            if self.chat.wants_usage:
                yield meter.usage_chunk(self.usage.prompt_tokens, self.usage.completion_tokens, str(charge.charged))
            yield b"data: [DONE]\n\n"

        async def finish(disconnected: bool) -> None:
            await response.aclose()
            if self.ended:
                return
            if broke:
                status, reason = 502, f"upstream stream broke: {broke[0]}"
            elif disconnected:
                status, reason = 499, "client disconnected or stopped reading mid-stream"
            else:
                status, reason = 502, "stream ended with no data"
            if meter.chunks == 0 and not (disconnected and not broke):
                # nothing reached us and the upstream failed: nothing was delivered, nothing is charged
                await self.fail(status, reason)
                return
            # the upstream accepted the request: a client that leaves pays at least the prompt
            self.usage.success, self.usage.status_code, self.usage.error_message = False, status, reason
            await self.settle(route, meter.usage, meter.generated_text, meter.words)

        return MeteredStream(
            events(),
            finish,
            headers={"x-request-id": self.request_id},
            keepalive=self.keep_hold if self.hold_id is not None else None,
            keepalive_every=self.settings.hold_ttl_seconds / 3,
            send_timeout=self.settings.stream_send_timeout_seconds,
        )


async def chat_completions(request: Request) -> Response:
    state = request.app.state
    owner = await gateway_owner(request)
    chat = parse_chat_request(await request.body(), state.settings.max_chat_json_separators)

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
