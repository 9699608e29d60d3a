"""Talking to upstream providers: fall over in order, and read their SSE streams as they pass."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ledger.gateway.routing import Route
from ledger.gateway.tokens import upstream_json, words

log = logging.getLogger("ledger.upstream")


class AllProvidersFailed(Exception):
    def __init__(self, failures: list[str], status_code: int | None) -> None:
        super().__init__("; ".join(failures) or "no provider could be tried")
        self.failures = failures
        self.status_code = status_code


class UpstreamBodyTooLarge(Exception):
    """A provider's non-streamed answer is larger than the service reads (it is not a chat reply)."""

    def __init__(self, route: Route, most: int) -> None:
        super().__init__(f"{route.provider} answered with a body over {most} bytes")
        self.route = route


async def read_capped(route: Route, response: httpx.Response, most: int) -> httpx.Response:
    """The response read whole, never buffering more than `most` bytes (decoded): what is over is
    UpstreamBodyTooLarge, and the rest of the body is never read. The caller closes `response`."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > most and "content-encoding" not in response.headers:
        raise UpstreamBodyTooLarge(route, most)
    chunks: list[bytes] = []
    size = 0
    async for data in response.aiter_bytes():
        size += len(data)
        if size > most:
            raise UpstreamBodyTooLarge(route, most)
        chunks.append(data)
    return httpx.Response(
        response.status_code, headers=response.headers, content=b"".join(chunks), request=response.request
    )


def is_retryable(route: Route, status_code: int) -> bool:
    """429 and 5xx mean "try the next provider", and so does a provider refusing the platform's own
    key (401/403: the operator's problem, not the caller's); any other error is the request's own."""
    if status_code in (401, 403):
        return not route.is_byok
    return status_code == 429 or status_code >= 500


def chat_completions_url(route: Route) -> str:
    return route.config.base_url.rstrip("/") + "/chat/completions"


def _api_key(route: Route) -> str:
    return route.byok_key.api_key if route.byok_key is not None else route.config.api_key.get_secret_value()


async def open_first(
    client: httpx.AsyncClient,
    routes: list[Route],
    body_for: Callable[[Route], dict[str, Any]],
    *,
    stream: bool,
    max_body: int = 32 * 1024 * 1024,
) -> tuple[Route, httpx.Response]:
    """The first route that answers without a connect error, timeout, 429, 5xx or platform-key refusal.

    `body_for(route)` is the body sent to that route (its max_tokens is the one its hold allows).
    A successful streamed response comes back open (the caller reads and closes it); any other
    response is read whole (at most `max_body` bytes: else UpstreamBodyTooLarge) and closed.
    """
    failures: list[str] = []
    last_status: int | None = None
    for route in routes:
        request = client.build_request(
            "POST",
            chat_completions_url(route),
            json={**body_for(route), "model": route.price.model},
            headers={"Authorization": f"Bearer {key}"} if (key := _api_key(route)) else {},
            timeout=httpx.Timeout(route.config.timeout_s, connect=min(route.config.timeout_s, 10.0)),
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:  # connect errors and timeouts are TransportErrors
            failures.append(f"{route.provider}: {type(exc).__name__}")
            log.warning("provider %s failed: %s; trying the next", route.provider, type(exc).__name__)
            continue
        if not stream or response.status_code >= 400:
            opened = response
            try:
                response = await read_capped(route, opened, max_body)
            except httpx.TransportError as exc:
                failures.append(f"{route.provider}: {type(exc).__name__} while reading")
                continue
            finally:
                await opened.aclose()
        if is_retryable(route, response.status_code):
            last_status = response.status_code
            failures.append(f"{route.provider}: HTTP {response.status_code}")
            log.warning("provider %s answered %s; trying the next", route.provider, response.status_code)
            continue
        return route, response
    raise AllProvidersFailed(failures, last_status)


MAX_SSE_LINE = 1 << 20  # bytes; a longer line is dropped (no chat chunk is this big)


async def sse_lines(response: httpx.Response, max_line: int = MAX_SSE_LINE) -> AsyncIterator[str]:
    """The response's lines (split on \\n, \\r\\n or \\r), never holding more than `max_line` bytes of
    one line: an upstream sending an endless line cannot exhaust memory; the line is skipped."""
    buffer = b""
    dropping = False
    async for data in response.aiter_bytes():
        buffer += data
        tail = b""
        if buffer.endswith(b"\r"):  # maybe the first half of a \r\n split across reads
            buffer, tail = buffer[:-1], b"\r"
        *complete, buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        buffer += tail
        for line in complete:
            if dropping:
                dropping = False
                continue
            if len(line) <= max_line:
                yield line.decode("utf-8", "replace")
        if len(buffer) > max_line:
            buffer, dropping = b"", True
    if buffer and not dropping:
        yield buffer.decode("utf-8", "replace")


def finite(value: Any) -> Any:
    """JSON from an upstream with NaN and infinities replaced by null (they are not JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def _well_formed(chunk: Any) -> bool:
    """A chat chunk the client's SDK can read: an object whose choices (if any) are a list of
    objects, each with an object delta (if any)."""
    if not isinstance(chunk, dict):
        return False
    choices = chunk.get("choices")
    if choices is None:
        return True
    return isinstance(choices, list) and all(
        isinstance(choice, dict) and isinstance(choice.get("delta") or {}, dict) for choice in choices
    )


@dataclass
class StreamMeter:
    """Follows an OpenAI chat SSE stream event by event.

    It keeps the generated text per choice (to floor and estimate token counts) and the upstream's
    usage (any JSON, judged at the settle), and decides what the client gets now: every well-formed
    chunk without its usage. Malformed events are skipped, and the usage chunk and [DONE] are held
    back: the proxy settles first, then sends the usage with the cost actually charged.
    """

    client_wants_usage: bool
    text: dict[int, list[str]] = field(default_factory=dict)
    usage: Any = None
    base: dict[str, Any] = field(default_factory=dict)
    chunks: int = 0
    skipped: int = 0
    done: bool = False

    def event(self, lines: list[str]) -> bytes | None:
        """One SSE event (its lines, without the blank line): the bytes to forward, or None."""
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        if not data:
            return None
        if data == "[DONE]":
            self.done = True
            return None
        try:
            raw = upstream_json(data)
            chunk = finite(raw)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to walk
            raw = chunk = None
        if not _well_formed(chunk):
            self.skipped += 1
            return None
        self._observe(chunk)
        had_usage = "usage" in chunk
        chunk.pop("usage", None)
        if raw.get("usage") is not None:
            self.usage = raw["usage"]  # as reported (NaN included): judged at the settle
            if not chunk.get("choices"):
                return None  # the usage-only chunk: sent after the settle, with the charged cost
        if had_usage and self.client_wants_usage:
            chunk["usage"] = None
        try:
            return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode()
        except (ValueError, RecursionError):
            self.skipped += 1
            return None

    def _observe(self, chunk: dict[str, Any]) -> None:
        self.chunks += 1
        for key in ("id", "object", "created", "model", "system_fingerprint"):
            if key in chunk and key not in self.base:
                self.base[key] = chunk[key]
        for choice in chunk.get("choices") or []:
            index = choice.get("index") if isinstance(choice.get("index"), int) else 0
            pieces = self.text.setdefault(index, [])
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                pieces.append(delta["content"])
            if isinstance(delta.get("refusal"), str):
                pieces.append(delta["refusal"])
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else []:
                function = call.get("function") if isinstance(call, dict) else None
                arguments = function.get("arguments") if isinstance(function, dict) else None
                if isinstance(function, dict) and isinstance(function.get("name"), str):
                    pieces.append(" " + function["name"] + " ")
                if isinstance(arguments, str):
                    pieces.append(arguments)

    @property
    def generated_text(self) -> str:
        return "\n".join("".join(pieces) for pieces in self.text.values())

    @property
    def words(self) -> int:
        """Words delivered, choice by choice: the floor under the completion's tokens."""
        return sum(words("".join(pieces)) for pieces in self.text.values())

    def usage_chunk(self, prompt: int, completion: int, cost: str) -> bytes:
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        chunk = {
            "object": "chat.completion.chunk",
            **self.base,
            "choices": [],
            "usage": {**usage, "cost": cost},
        }
        return f"data: {json.dumps(finite(chunk), separators=(',', ':'))}\n\n".encode()
