"""Talking to upstream providers: fall over in order, and read their SSE streams as they pass."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from ledger.routing import Route

log = logging.getLogger("ledger.upstream")


class AllProvidersFailed(Exception):
    def __init__(self, failures: list[str], status_code: int | None) -> None:
        super().__init__("; ".join(failures) or "no provider could be tried")
        self.failures = failures
        self.status_code = status_code


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
    client: httpx.AsyncClient, routes: list[Route], body: dict[str, Any], *, stream: bool
) -> tuple[Route, httpx.Response]:
    """The first route that answers without a connect error, timeout, 429, 5xx or platform-key refusal.

    A successful streamed response comes back open (the caller reads and closes it); any other
    response is read whole and closed.
    """
    failures: list[str] = []
    last_status: int | None = None
    for route in routes:
        request = client.build_request(
            "POST",
            chat_completions_url(route),
            json={**body, "model": route.price.model},
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
            try:
                await response.aread()
            except httpx.TransportError as exc:
                failures.append(f"{route.provider}: {type(exc).__name__} while reading")
                continue
            finally:
                await response.aclose()
        if is_retryable(route, response.status_code):
            last_status = response.status_code
            failures.append(f"{route.provider}: HTTP {response.status_code}")
            log.warning("provider %s answered %s; trying the next", route.provider, response.status_code)
            continue
        return route, response
    raise AllProvidersFailed(failures, last_status)


@dataclass
class StreamMeter:
    """Follows an OpenAI chat SSE stream event by event.

    It keeps the generated text (to count tokens if the upstream never reports usage) and the
    upstream's usage, and decides what the client gets: usage only when the client asked for it,
    with the cost in credits added.
    """

    client_wants_usage: bool
    cost_of: Callable[[dict[str, Any]], Decimal]
    text: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    model: str | None = None
    chunks: int = 0
    done: bool = False

    def event(self, lines: list[str]) -> bytes | None:
        """One SSE event (its lines, without the blank line): the bytes to forward, or None."""
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        if not data:
            return None
        if data == "[DONE]":
            self.done = True
            return b"data: [DONE]\n\n"
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            return None
        self._observe(chunk)
        usage = chunk.get("usage")
        if usage:
            if self.client_wants_usage:
                chunk["usage"] = {**usage, "cost": str(self.cost_of(usage))}
            elif not chunk.get("choices"):
                return None
            else:
                chunk.pop("usage")
        elif "usage" in chunk and not self.client_wants_usage:
            chunk.pop("usage")
        return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode()

    def _observe(self, chunk: dict[str, Any]) -> None:
        self.chunks += 1
        self.model = self.model or chunk.get("model")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self.text.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                arguments = (call.get("function") or {}).get("arguments")
                if isinstance(arguments, str):
                    self.text.append(arguments)

    @property
    def generated_text(self) -> str:
        return "".join(self.text)
