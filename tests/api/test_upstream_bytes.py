"""Whatever bytes an upstream sends (issue 17, item 8): a lone UTF-16 surrogate (a truncated emoji,
or a valid emoji split across two SSE events) or a NUL anywhere in an answer or an error body.
Each request ends with one usage row, its hold resolved, and an answer the client's SDK parses.
Before: a 500 after the charge ("nothing was charged"), no usage row and a hold left held until
its TTL, or a 400 quoting PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.ledger_state import assert_reconciled, usage_rows

MESSAGES = [{"role": "user", "content": "Hi " + "0123456789" * 100}]
# JSON escapes an upstream may send in a string: lone high and low surrogates, NUL, a split pair
NASTY = ["\\ud83d", "\\ude00", "\\u0000", "\\ud83d\\ude00", "\\udfff\\ud800", "\\u0000\\ud83d"]


async def one_row_and_no_hold(pool, user_id, timeout: float = 10.0):
    for _ in range(int(timeout / 0.05)):
        rows = await usage_rows(pool, user_id)
        if rows:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    rows = await usage_rows(pool, user_id)
    assert len(rows) == 1, rows
    assert await pool.fetchval("SELECT count(*) FROM credit_holds WHERE user_id = $1 AND status = 'held'", user_id) == 0
    await assert_reconciled(pool)
    return rows[0]


def completion(content_json: str) -> bytes:
    """A chat completion whose content is the given JSON string text, verbatim."""
    body = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "__C__"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 5, "total_tokens": 1005},
    }
    return json.dumps(body).replace('"__C__"', content_json).encode()


def chunk(content_json: str) -> bytes:
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4",
            "choices": [{"index": 0, "delta": {"content": "__C__"}, "finish_reason": None}]}  # fmt: skip
    return b"data: " + json.dumps(body).replace('"__C__"', content_json).encode() + b"\n\n"


USAGE_CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4","choices":[],'
    b'"usage":{"prompt_tokens":1000,"completion_tokens":5,"total_tokens":1005}}\n\n'
)


@pytest.mark.parametrize("nasty", NASTY)
async def test_a_non_streamed_answer_with_any_escape_is_charged_once_and_parses(
    pool, upstreams, start_service, make_account, nasty
):
    upstreams["openai"].raw_body = completion(f'"Hello {nasty} world"')
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    reply = service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert reply.choices[0].message.content.startswith("Hello ")
    row = await one_row_and_no_hold(pool, account.user_id)
    assert row["success"] and row["credits_used"] > 0


@pytest.mark.parametrize("pieces", [["\\ud83d", "\\ude00"], ["\\ud83d"], ["a\\u0000b"], ["\\ude00", "x"]])
async def test_a_stream_with_split_or_lone_surrogates_is_settled_and_parses(
    pool, upstreams, start_service, make_account, pieces
):
    """An emoji split across two SSE events arrives as two lone surrogates, one an event."""
    upstreams["openai"].raw_stream = [*(chunk(f'"{p}"') for p in pieces), USAGE_CHUNK, b"data: [DONE]\n\n"]
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    stream = service.client(account.key).chat.completions.create(
        model="gpt-4", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    received = list(stream)

    assert received[-1].usage is not None and received[-1].usage.completion_tokens == 5
    row = await one_row_and_no_hold(pool, account.user_id)
    assert row["success"] and row["credits_used"] > 0


@pytest.mark.parametrize("nasty", NASTY)
async def test_a_providers_error_body_with_any_escape_is_relayed_and_releases_the_hold(
    pool, upstreams, start_service, make_account, nasty
):
    error = f'{{"error": {{"message": "bad {nasty} input", "type": "invalid_request_error", "code": null}}}}'
    upstreams["openai"].raw_chunks = [error.encode()]
    upstreams["openai"].raw_status = 400
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    with pytest.raises(openai.BadRequestError) as raised:
        service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert "PostgreSQL" not in raised.value.message and "bad" in raised.value.message
    row = await one_row_and_no_hold(pool, account.user_id)
    assert not row["success"] and row["status_code"] == 400 and row["credits_used"] == 0
    assert "\x00" not in row["error_message"]


surrogates = st.integers(0xD800, 0xDFFF).map(lambda c: f"\\u{c:04x}")
escaped_text = st.lists(
    st.one_of(st.text(alphabet="ab ", max_size=3), surrogates, st.sampled_from(["\\u0000", '\\"', "\\n"])), max_size=8
).map("".join)


async def test_any_escaped_text_in_an_answer_ends_with_one_row_each_and_no_open_hold(
    pool, upstreams, start_service, make_account
):
    fake = upstreams["openai"]
    service = start_service(upstreams)
    account = await make_account(credits_="100")
    client = service.client(account.key)
    answered: list[str] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(answer=escaped_text, stream=st.booleans())
    def request_with(answer: str, stream: bool) -> None:
        fake.raw_body = None if stream else completion(f'"{answer}"')  # the fake answers raw_body first
        fake.raw_stream = [chunk(f'"{answer}"'), USAGE_CHUNK, b"data: [DONE]\n\n"]
        if stream:
            list(client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))
        else:
            client.chat.completions.create(model="gpt-4", messages=MESSAGES)
        answered.append(answer)

    await asyncio.to_thread(request_with)

    for _ in range(100):  # a stream's row is written as it ends
        if len(await usage_rows(pool, account.user_id)) >= len(answered):
            break
        await asyncio.sleep(0.05)
    rows = await usage_rows(pool, account.user_id)
    assert len(rows) == len(answered) and all(row["success"] for row in rows)
    assert await pool.fetchval("SELECT count(*) FROM credit_holds WHERE status = 'held'") == 0
    await assert_reconciled(pool)


@pytest.mark.parametrize(
    "body", [b"bad \x00 input", b'{"error": {"message": "bad \x00 input", "type": "x"}}', b"\xff\xfe\x00"]
)
async def test_a_providers_error_body_with_raw_nul_bytes_releases_the_hold(
    pool, upstreams, start_service, make_account, body
):
    """A NUL byte in a provider's 4xx body became a 400 quoting PostgreSQL, the hold left held."""
    upstreams["openai"].raw_chunks = [body]
    upstreams["openai"].raw_status = 422
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    with pytest.raises(openai.UnprocessableEntityError) as raised:
        service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert "PostgreSQL" not in raised.value.message
    row = await one_row_and_no_hold(pool, account.user_id)
    assert not row["success"] and row["status_code"] == 422 and "\x00" not in row["error_message"]
