"""Bound is not estimate (issue 17, items 4 and 5). The bound of a part is the most it can cost,
for the hold; its estimate is what it most likely cost, charged when the request's usage never
came (a stream that broke or was left before its usage, an answer that never came). Before: a
chat stream with 10 high-detail images (11,075 prompt tokens) left before its usage chunk was
charged 24 tokens (its text only), and a Responses stream with one image that broke was charged
the image's bound (50,000 tokens: 1.25 credits against 0.021 real)."""

from __future__ import annotations

import asyncio
import base64
import json

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.gateway.tokens import (
    IMAGE_HIGH_ESTIMATE,
    IMAGE_HIGH_TOKENS,
    prompt_tokens_estimate,
    prompt_tokens_upper_bound,
)
from tests.api.ledger_state import usage_rows
from tests.api.test_responses import MODEL as RESPONSES_MODEL
from tests.api.test_responses import fake as responses_api

responses_fake = pytest.fixture(responses_api.__wrapped__, name="responses_fake")  # type: ignore[attr-defined]

IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}}
BASE = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4"}


async def the_row(pool, user_id):
    for _ in range(200):
        if rows := await usage_rows(pool, user_id):
            return rows[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no usage row")


async def test_a_chat_stream_whose_usage_never_came_is_charged_every_part_of_its_prompt(
    pool, upstreams, start_service, make_account
):
    content = {**BASE, "choices": [{"index": 0, "delta": {"content": "Ten cats."}, "finish_reason": None}]}
    upstreams["openai"].raw_stream = [f"data: {json.dumps(content)}\n\n".encode()]  # then the stream ends
    service = start_service(upstreams)
    account = await make_account(credits_="1000")
    messages = [{"role": "user", "content": [{"type": "text", "text": "What are these?"}, *[IMAGE] * 10]}]

    list(service.client(account.key).chat.completions.create(model="gpt-4", messages=messages, stream=True))

    row = await the_row(pool, account.user_id)
    assert row["prompt_tokens"] >= 10 * IMAGE_HIGH_ESTIMATE, "the images are counted, not the text alone"
    assert row["prompt_tokens"] < 10 * IMAGE_HIGH_TOKENS, "at their estimate, not their bound"


async def test_a_responses_stream_with_an_image_that_breaks_is_charged_its_estimate_not_its_bound(
    pool, responses_fake, start_service, make_account
):
    responses_fake.drop_after = 2
    service = start_service({"openai": responses_fake})
    account = await make_account(credits_="100")
    image = {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "high"}
    content = [{"type": "input_text", "text": "What is this?"}, image]

    try:  # the stream ends with the gateway's error event (which some SDK versions raise)
        for _ in service.client(account.key).responses.create(
            model=RESPONSES_MODEL, input=[{"role": "user", "content": content}], stream=True
        ):
            pass
    except openai.APIError:
        pass

    row = await the_row(pool, account.user_id)
    assert IMAGE_HIGH_ESTIMATE <= row["prompt_tokens"] < 2 * IMAGE_HIGH_ESTIMATE, row["prompt_tokens"]


def audio_part(audio: bytes) -> dict:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(audio).decode(), "format": "wav"}}


parts = st.one_of(
    st.text(max_size=50).map(lambda text: {"type": "text", "text": text}),
    st.sampled_from(["low", "high", "auto"]).map(
        lambda detail: {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": detail}}
    ),
    st.binary(min_size=3, max_size=3000).map(audio_part),
)


@given(st.lists(parts, max_size=6), parts)
def test_an_estimate_is_within_the_bound_and_counts_every_part(content, another):
    messages = [{"role": "user", "content": content}]
    estimate = prompt_tokens_estimate(messages)

    assert estimate <= prompt_tokens_upper_bound(messages)
    more = [{"role": "user", "content": [*content, another]}]
    assert prompt_tokens_estimate(more) >= estimate, "adding a part never lowers the estimate"
