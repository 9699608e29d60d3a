"""Traffic for the failover test: metered requests through the real openai and anthropic SDKs (no
retries: every answer is recorded as the service gave it) and signed Stripe webhooks, each answer
kept with when it was asked and answered."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import openai

from tests.fake_stripe import sign

OPENAI_MODEL = "gpt-3.5-turbo"
ANTHROPIC_MODEL = "claude-3-haiku-20240307"
TIMEOUT = 30.0
PAUSE = 0.02  # between one client's requests


@dataclass
class Answer:
    api: str  # "openai", "anthropic" or "stripe"
    user: str  # the user's id (metered) or the Stripe event's id
    started: float
    ended: float
    status: int | None  # None: no HTTP answer at all (the connection failed)
    headers: httpx.Headers
    body: Any = None  # the JSON of a non-200 answer (its text if not JSON)
    error: str | None = None
    charged: str | None = None  # the credits a 200 says it charged

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


async def _read(raw: Any, stream: bool) -> str | None:
    """Reads an SDK's answer to its end (its raw response's parse() is a coroutine in anthropic's
    async client, not in openai's); the credits charged: the x-credits-charged header of a whole
    answer, the `cost` in the usage of a stream's last events (OpenAI's usage chunk, Anthropic's
    message_delta)."""
    parsed = raw.parse()
    if inspect.isawaitable(parsed):
        parsed = await parsed
    if not stream:
        charged: str | None = raw.headers.get("x-credits-charged")
        return charged
    cost = None
    async for event in parsed:
        usage = getattr(event, "usage", None)
        if usage is not None and usage.model_extra and "cost" in usage.model_extra:
            cost = str(usage.model_extra["cost"])
    return cost


@dataclass
class Load:
    base_url: str
    answers: list[Answer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def _record(self, api: str, user: str, started: float, status: int | None, headers: Any, **more: Any) -> None:
        self.answers.append(Answer(api, user, started, time.monotonic(), status, httpx.Headers(headers), **more))

    async def openai_client(self, user: str, key: str, *, stream: bool) -> None:
        client = openai.AsyncOpenAI(base_url=f"{self.base_url}/v1", api_key=key, max_retries=0, timeout=TIMEOUT)
        async with client:
            while True:  # at least one request, then until stopped
                started = time.monotonic()
                try:
                    raw = await client.chat.completions.with_raw_response.create(
                        model=OPENAI_MODEL,
                        messages=[{"role": "user", "content": "Say hello"}],
                        max_tokens=20,
                        stream=stream,
                        **({"stream_options": {"include_usage": True}} if stream else {}),
                    )
                    charged = await _read(raw, stream)
                    self._record("openai", user, started, raw.status_code, raw.headers, charged=charged)
                except openai.APIStatusError as exc:
                    self._record(
                        "openai", user, started, exc.status_code, exc.response.headers, body=_body(exc.response)
                    )
                except openai.APIError as exc:
                    self._record("openai", user, started, None, {}, error=repr(exc))
                if self.stop.is_set():
                    return
                await asyncio.sleep(PAUSE)

    async def anthropic_client(self, user: str, key: str, *, stream: bool) -> None:
        client = anthropic.AsyncAnthropic(base_url=self.base_url, api_key=key, max_retries=0, timeout=TIMEOUT)
        async with client:
            while True:  # at least one request, then until stopped
                started = time.monotonic()
                try:
                    raw = await client.messages.with_raw_response.create(
                        model=ANTHROPIC_MODEL,
                        max_tokens=20,
                        messages=[{"role": "user", "content": "Say hello"}],
                        stream=stream,
                    )
                    charged = await _read(raw, stream)
                    self._record("anthropic", user, started, raw.status_code, raw.headers, charged=charged)
                except anthropic.APIStatusError as exc:
                    self._record(
                        "anthropic", user, started, exc.status_code, exc.response.headers, body=_body(exc.response)
                    )
                except anthropic.APIError as exc:
                    self._record("anthropic", user, started, None, {}, error=repr(exc))
                if self.stop.is_set():
                    return
                await asyncio.sleep(PAUSE)

    async def deliver(self, http: httpx.AsyncClient, event: dict[str, Any]) -> Answer:
        """One delivery of a signed event, as Stripe makes it."""
        body = json.dumps(event)
        started = time.monotonic()
        headers = {"Content-Type": "application/json", "Stripe-Signature": sign(body)}
        try:
            response = await http.post(f"{self.base_url}/webhooks/stripe", content=body, headers=headers)
        except httpx.TransportError as exc:
            self._record("stripe", event["id"], started, None, {}, error=repr(exc))
        else:
            self._record("stripe", event["id"], started, response.status_code, response.headers, body=_body(response))
        return self.answers[-1]

    async def stripe(self, events: list[dict[str, Any]], interval: float) -> None:
        """Delivers each event once, one every `interval` seconds, until stopped or out of events."""
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            for event in events:
                if self.stop.is_set():
                    return
                await self.deliver(http, event)
                await asyncio.sleep(interval)

    def of(self, *apis: str) -> list[Answer]:
        return [answer for answer in self.answers if answer.api in apis]
