"""Failures inside a 200 stream (issue 17, item 6): a stream whose only events are the provider's
error (chat's `{"error": ...}` chunk, OpenRouter's `finish_reason: "error"`, Responses'
`response.failed` with no usage, an `error` event after `response.created`, Anthropic's `error`
after `message_start`) generated nothing, and the provider bills nothing: neither does the
gateway. The hold is released, the usage row is failed (502) with the provider's words. Before,
such a stream was charged the prompt, and on chat logged as a success. A stream that generated
text before its error is still billed for what it generated, and logged failed."""

from __future__ import annotations

import asyncio
import json

import anthropic
import openai
import pytest

from tests.api.ledger_state import assert_reconciled, usage_rows
from tests.api.test_messages import MODEL as CLAUDE
from tests.api.test_messages import client as anthropic_client
from tests.api.test_messages import priced as price_claude
from tests.api.test_responses import MODEL as RESPONSES_MODEL
from tests.api.test_responses import fake as responses_api
from tests.fake_anthropic import FakeAnthropic

# the other modules' fixtures, under names of this module's
claude_priced = pytest.fixture(price_claude.__wrapped__, name="claude_priced")  # type: ignore[attr-defined]
responses_fake = pytest.fixture(responses_api.__wrapped__, name="responses_fake")  # type: ignore[attr-defined]


@pytest.fixture
def claude():
    fake = FakeAnthropic(input_tokens=100, output_tokens=50)
    fake.start()
    yield fake
    fake.stop()


MESSAGES = [{"role": "user", "content": "Hi " + "0123456789" * 100}]
BASE = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4"}


def sse(payload: dict) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def named(event: str, payload: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(payload)}\n\n".encode()


async def the_row(pool, user_id):
    for _ in range(200):
        if await usage_rows(pool, user_id):
            await asyncio.sleep(0.1)
            (row,) = await usage_rows(pool, user_id)
            assert await pool.fetchval("SELECT count(*) FROM credit_holds WHERE status = 'held'") == 0
            await assert_reconciled(pool)
            return row
        await asyncio.sleep(0.05)
    raise AssertionError("no usage row")


def chat_error_chunk() -> list[bytes]:
    return [
        sse({"error": {"message": "The server had an error while processing your request.", "type": "server_error"}})
    ]


def openrouter_error_chunk() -> list[bytes]:
    choice = {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}
    error = {"code": 502, "message": "Provider returned error"}
    return [sse({**BASE, "choices": [choice], "error": error}), b"data: [DONE]\n\n"]


@pytest.mark.parametrize("events", [chat_error_chunk(), openrouter_error_chunk()], ids=["openai", "openrouter"])
async def test_a_chat_stream_that_is_only_the_providers_error_is_free_and_failed(
    pool, upstreams, start_service, make_account, events
):
    upstreams["openai"].raw_stream = events
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    with pytest.raises(openai.APIError):
        list(service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))

    row = await the_row(pool, account.user_id)
    assert (row["success"], row["status_code"], row["credits_used"]) == (False, 502, 0)
    assert "reported an error" in row["error_message"]


async def test_a_chat_stream_with_text_then_the_providers_error_is_billed_and_failed(
    pool, upstreams, start_service, make_account
):
    text = {**BASE, "choices": [{"index": 0, "delta": {"content": "Hello there friend"}, "finish_reason": None}]}
    upstreams["openai"].raw_stream = [sse(text), *chat_error_chunk()]
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    with pytest.raises(openai.APIError):
        list(service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))

    row = await the_row(pool, account.user_id)
    assert not row["success"] and row["credits_used"] > 0 and row["completion_tokens"] >= 3


def response_created() -> bytes:
    response = {"id": "resp_1", "object": "response", "status": "in_progress", "output": [], "model": RESPONSES_MODEL}
    return named("response.created", {"type": "response.created", "sequence_number": 0, "response": response})


def response_failed(usage: dict | None) -> bytes:
    response = {
        "id": "resp_1",
        "object": "response",
        "status": "failed",
        "output": [],
        "model": RESPONSES_MODEL,
        "error": {"code": "server_error", "message": "The model failed to generate a response."},
        "usage": usage,
    }
    return named("response.failed", {"type": "response.failed", "sequence_number": 1, "response": response})


def error_event() -> bytes:
    return named("error", {"type": "error", "code": "server_error", "message": "Upstream overloaded", "param": None,
                           "sequence_number": 1})  # fmt: skip


@pytest.mark.parametrize(
    "events",
    [[response_created(), response_failed(None)], [response_created(), error_event()], [response_failed(None)]],
    ids=["failed-no-usage", "error-after-created", "failed-only"],
)
async def test_a_responses_stream_that_only_fails_is_free_and_failed(
    pool, responses_fake, start_service, make_account, events
):
    responses_fake.raw_stream = events
    service = start_service({"openai": responses_fake})
    account = await make_account(credits_="100")

    received = []
    try:  # the SDK yields response.failed and the error event (some versions raise on it)
        for event in service.client(account.key).responses.create(model=RESPONSES_MODEL, input="Hi", stream=True):
            received.append(event.type)
    except openai.APIError:
        received.append("raised")
    assert received[-1] in ("response.failed", "error", "raised"), received

    row = await the_row(pool, account.user_id)
    assert (row["success"], row["status_code"], row["credits_used"]) == (False, 502, 0)


@pytest.mark.parametrize("linger", [0.0, 1.5], ids=["closes-at-once", "closes-after-the-client-left"])
async def test_an_anthropic_error_after_message_start_with_nothing_generated_is_free(
    pool, claude, claude_priced, upstreams, start_service, make_account, linger
):
    # the SDK raises on the error event and leaves: whether the provider's stream ends before or
    # after that, the provider bills nothing and neither do we (no 499 with the prompt charged)
    start = {
        "type": "message_start",
        "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": CLAUDE, "content": [],
                    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 2800, "output_tokens": 1}},
    }  # fmt: skip
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    claude.raw_stream = [named("message_start", start), named("error", error)]
    claude.raw_stream_linger = linger
    service = start_service({"anthropic": claude, "openai": upstreams["openai"]})
    account = await make_account(credits_="10")

    with (
        pytest.raises(anthropic.APIStatusError),
        anthropic_client(service, account.key).messages.stream(
            model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
        ) as stream,
    ):
        list(stream)

    row = await the_row(pool, account.user_id)
    assert (row["success"], row["status_code"], row["credits_used"]) == (False, 502, 0)
    assert "Overloaded" in row["error_message"]
