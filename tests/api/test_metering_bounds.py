"""What an upstream reports is bounded by what was asked for; the hold is the most a request costs;
a hold lives as long as its request. Issue 8, sections 3 to 5, through the real service."""

from __future__ import annotations

import asyncio
import base64
import json
from decimal import Decimal

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.gateway import model_limits
from ledger.gateway.tokens import IMAGE_HIGH_TOKENS, prompt_tokens_upper_bound
from tests.api.ledger_state import assert_reconciled, hold_of

SHORT = [{"role": "user", "content": "Say hello."}]
LIMIT = 8192  # gpt-4's context window in the catalog
# gpt-4's output limit: the seed's row says 8,192, LiteLLM's table (the real limits) 4,096, and a
# row is never read above the real limit
OUTPUT_LIMIT = model_limits.limits_of("gpt-4").max_output_tokens


def gpt4_credits(prompt: int, completion: int, multiplier: str = "1") -> Decimal:
    usd = (prompt * 30 + completion * 60) / Decimal(1_000_000)
    return (usd / Decimal("0.1") * Decimal(multiplier)).quantize(Decimal("0.000001"))


async def wait_for_row(pool, user_id, timeout: float = 15.0):
    for _ in range(int(timeout / 0.05)):
        rows = await pool.fetch("SELECT * FROM llm_usage_log WHERE user_id = $1", user_id)
        if rows:
            await asyncio.sleep(0.1)  # a second row would be a bug: give it the chance to show
            return await pool.fetch("SELECT * FROM llm_usage_log WHERE user_id = $1", user_id)
        await asyncio.sleep(0.05)
    raise AssertionError("no usage row was written")


def post_chat(service, key: str, body: dict) -> httpx.Response:
    return httpx.post(
        f"{service.url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30
    )


# --- section 3: reported usage is bounded --------------------------------------------------------


async def test_absurd_usage_is_charged_at_the_requests_bound_and_recorded_as_an_anomaly(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].usage = (2**40, 2**40)  # beyond int4: the settle failed and the request was free
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    raw = service.client(account.key).chat.completions.with_raw_response.create(
        model="gpt-4", messages=SHORT, max_tokens=10
    )
    completion = raw.parse()

    prompt_bound = prompt_tokens_upper_bound(SHORT)
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (prompt_bound, 10)
    charged = gpt4_credits(prompt_bound, 10)
    assert Decimal(completion.usage.model_extra["cost"]) == charged == Decimal(raw.headers["x-credits-charged"])
    (row,) = await wait_for_row(pool, account.user_id)
    assert row["credits_used"] == charged and row["success"]
    assert "above the request's bound" in row["usage_anomaly"]
    assert json.loads(row["reported_usage"])["prompt_tokens"] == 2**40
    hold = await hold_of(pool, account.user_id)
    assert hold["status"] == "settled" and hold["charged"] <= hold["amount"]
    metrics = httpx.get(f"{service.url}/metrics").text
    assert 'ledger_usage_anomalies_total{provider="openai"} 1.0' in metrics
    await assert_reconciled(pool)


async def test_token_columns_are_bigint(pool, make_user):
    user = await make_user()
    usage = {"request_id": "req_big", "user_id": str(user), "model": "gpt-4", "prompt_tokens": 2**40}
    await pool.execute("SELECT ledger_log_usage($1::jsonb, NULL, 0, NULL, true)", json.dumps(usage))
    assert await pool.fetchval("SELECT total_tokens FROM llm_usage_log WHERE request_id = 'req_big'") == 2**40


WEIRD_USAGES = [
    "NaN",
    "Infinity",
    '"12"',
    "[1, 2]",
    "5",
    "true",
    '{"prompt_tokens": NaN, "completion_tokens": -Infinity}',
    '{"prompt_tokens": 1e400, "completion_tokens": 12.5}',
    '{"prompt_tokens": -5, "completion_tokens": -1}',
    '{"prompt_tokens": "10", "completion_tokens": [3]}',
    '{"prompt_tokens": ' + "9" * 5000 + ', "completion_tokens": 1}',
    '{"prompt_tokens": 0, "completion_tokens": 0}',
    "{}",
]


@pytest.mark.parametrize("usage_json", WEIRD_USAGES)
@pytest.mark.parametrize("stream", [False, True])
async def test_whatever_usage_arrives_the_request_ends_with_one_row_and_a_settled_hold(
    pool, upstreams, start_service, make_account, usage_json, stream
):
    upstreams["openai"].usage_json = usage_json
    service = start_service(upstreams)
    account = await make_account(credits_="100")
    client = service.client(account.key)

    if stream:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4",
                messages=SHORT,
                max_tokens=50,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the fake upstream."
        cost = Decimal(chunks[-1].usage.model_extra["cost"])
    else:
        completion = client.chat.completions.create(model="gpt-4", messages=SHORT, max_tokens=50)
        cost = Decimal(completion.usage.model_extra["cost"])

    (row,) = await wait_for_row(pool, account.user_id)
    hold = await hold_of(pool, account.user_id)
    assert hold["status"] == "settled"
    assert row["credits_used"] == cost == hold["charged"], "the client sees exactly what was charged"
    assert 0 < cost <= hold["amount"]
    # the floor: 5 words were delivered and the prompt has 2 words and a role
    assert row["completion_tokens"] >= 5 and row["prompt_tokens"] >= 3
    assert row["usage_anomaly"] is not None
    await assert_reconciled(pool)


async def test_zero_usage_after_400_streamed_words_is_not_free(pool, upstreams, start_service, make_account):
    upstreams["openai"].usage = (0, 0)
    upstreams["openai"].words = ["word"] * 400
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    chunks = list(
        service.client(account.key).chat.completions.create(
            model="gpt-4", messages=SHORT, stream=True, stream_options={"include_usage": True}
        )
    )

    (row,) = await wait_for_row(pool, account.user_id)
    assert row["completion_tokens"] == 400 and row["prompt_tokens"] == 3
    assert row["credits_used"] == gpt4_credits(3, 400) == Decimal(chunks[-1].usage.model_extra["cost"])
    assert "below the" in row["usage_anomaly"]


async def test_an_honest_usage_is_charged_as_reported(pool, upstreams, start_service, make_account):
    upstreams["openai"].usage = (12, 7)  # within [floor, bound]: no anomaly
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    service.client(account.key).chat.completions.create(model="gpt-4", messages=SHORT)

    (row,) = await wait_for_row(pool, account.user_id)
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_anomaly"]) == (12, 7, None)


MALFORMED_EVENTS = [
    b"data: 5\n\n",
    b"data: []\n\n",
    b'data: "text"\n\n',
    b"data: {not json\n\n",
    b'data: {"choices": "nope"}\n\n',
    b'data: {"choices": [5]}\n\n',
    b'data: {"choices": [{"index": 0, "delta": 5}]}\n\n',
    b"data: " + b"[" * 100_000 + b"\n\n",
    b'data: {"choices": [], "deep": ' + b"[" * 50_000 + b"]" * 50_000 + b"}\n\n",
    b"data: " + b"x" * 3_000_000 + b"\n\n",  # a line beyond the 1 MiB a line may take: dropped
]


def sse(payload: dict) -> bytes:
    return f"data: {json.dumps(payload)}\r\n\r\n".encode()  # \r\n line endings, as some servers send


async def test_malformed_sse_events_are_skipped_without_cutting_the_stream(
    pool, upstreams, start_service, make_account
):
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4"}
    good = [sse({**base, "choices": [{"index": 0, "delta": {"content": w}}]}) for w in ("one", " two", " three")]
    upstreams["openai"].raw_stream = [
        good[0],
        *MALFORMED_EVENTS,
        good[1][:10],  # one event split across reads, between \r and \n
        good[1][10:-1],
        good[1][-1:],
        good[2],
        sse({**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}),
        b"data: [DONE]\r\n\r\n",
    ]
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    chunks = list(
        service.client(account.key).chat.completions.create(
            model="gpt-4", messages=SHORT, stream=True, stream_options={"include_usage": True}
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert chunks[-1].usage.prompt_tokens == 5 and chunks[-1].usage.completion_tokens == 3
    (row,) = await wait_for_row(pool, account.user_id)
    assert row["success"] and row["credits_used"] == gpt4_credits(5, 3)


async def test_n_streamed_choices_are_floored_choice_by_choice(pool, upstreams, start_service, make_account):
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4"}
    events = []
    for word in ("alpha", " beta", " gamma"):  # two choices interleaved: 6 words in all
        for index in (0, 1):
            events.append(sse({**base, "choices": [{"index": index, "delta": {"content": word}}]}))
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    upstreams["openai"].raw_stream = [*events, sse({**base, "choices": [], "usage": usage}), b"data: [DONE]\n\n"]
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    chunks = list(
        service.client(account.key).chat.completions.create(
            model="gpt-4", messages=SHORT, n=2, max_tokens=2, stream=True, stream_options={"include_usage": True}
        )
    )

    assert upstreams["openai"].requests[0]["body"]["n"] == 2
    # 6 words delivered, but 2 choices of at most 2 tokens were asked for: the ceiling (4) wins
    assert chunks[-1].usage.completion_tokens == 4
    (row,) = await wait_for_row(pool, account.user_id)
    assert row["completion_tokens"] == 4 and row["credits_used"] == gpt4_credits(3, 4)


async def test_tool_call_deltas_are_metered(pool, upstreams, start_service, make_account):
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4"}
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}
    pieces = [sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})]
    for part in ('{"q": ', '"a b c d e f"', "}"):
        delta = {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
        pieces.append(sse({**base, "choices": [{"index": 0, "delta": delta}]}))
    upstreams["openai"].raw_stream = [*pieces, b"data: [DONE]\n\n"]  # and no usage at all
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    list(service.client(account.key).chat.completions.create(model="gpt-4", messages=SHORT, stream=True))

    (row,) = await wait_for_row(pool, account.user_id)
    assert row["completion_tokens"] >= 8  # lookup, {"q":, "a, b, c, d, e, f"}
    assert row["credits_used"] > 0


async def test_an_html_answer_is_a_502_and_free(pool, upstreams, start_service, make_account):
    upstreams["openai"].raw_body = b"<html><body>Bad gateway</body></html>"
    upstreams["openai"].raw_content_type = "text/html"
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    response = post_chat(service, account.key, {"model": "gpt-4", "messages": SHORT})

    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_invalid_response"
    (row,) = await wait_for_row(pool, account.user_id)
    assert not row["success"] and row["credits_used"] == 0
    assert (await hold_of(pool, account.user_id))["status"] == "released"


async def test_an_answer_nested_too_deep_to_read_is_a_502_and_free(pool, upstreams, start_service, make_account):
    upstreams["openai"].raw_body = b'{"choices": [], "deep": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    response = post_chat(service, account.key, {"model": "gpt-4", "messages": SHORT})

    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_invalid_response"
    assert (await hold_of(pool, account.user_id))["status"] == "released"


@pytest.mark.parametrize(
    "answer",
    [
        {"repeat": 2000},  # a JSON completion of ~40 KB, with its Content-Length
        {"raw_chunks": [b'{"choices": [], "pad": "'] + [b"x" * 1024] * 40 + [b'"}']},  # chunked, no length
        {"status": 400, "raw_chunks": [b"x" * 1024] * 40},  # an error body is bounded too
    ],
    ids=["declared", "chunked", "error"],
)
async def test_an_answer_over_the_upstream_body_limit_is_a_502_and_free(
    pool, upstreams, start_service, make_account, answer
):
    for key, value in answer.items():
        setattr(upstreams["openai"], key, value)
    if "status" in answer:  # the fake answers its error status before any body: serve the chunks as the error
        upstreams["openai"].status = 200
        upstreams["openai"].raw_status = answer["status"]
    service = start_service(upstreams, max_upstream_body_bytes=16 * 1024)
    account = await make_account(credits_="100")

    response = post_chat(service, account.key, {"model": "gpt-4", "messages": SHORT})

    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_invalid_response"
    (row,) = await wait_for_row(pool, account.user_id)
    assert (row["success"], row["status_code"], row["credits_used"]) == (False, 502, 0)
    assert row["provider"] == "openai"
    assert (await hold_of(pool, account.user_id))["status"] == "released"
    await assert_reconciled(pool)
    # within the limit, the same answer is served
    upstreams["openai"].repeat, upstreams["openai"].raw_chunks, upstreams["openai"].raw_status = 1, None, 200
    assert post_chat(service, account.key, {"model": "gpt-4", "messages": SHORT}).status_code == 200


async def test_nan_elsewhere_in_the_answer_is_not_a_500(pool, upstreams, start_service, make_account):
    payload = '{"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4", "logprobs": NaN,'
    payload += ' "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi there"}}],'
    payload += ' "usage": {"prompt_tokens": 4, "completion_tokens": 2}}'
    upstreams["openai"].raw_body = payload.encode()
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    response = post_chat(service, account.key, {"model": "gpt-4", "messages": SHORT})

    assert response.status_code == 200 and response.json()["logprobs"] is None
    assert response.json()["usage"]["cost"] == str(gpt4_credits(4, 2))


async def test_a_stalled_stream_is_cut_by_the_read_timeout_and_billed_for_what_came(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].stall_after = 2
    service = start_service(upstreams, timeout_s=1.0)
    account = await make_account(credits_="100")

    with pytest.raises(openai.APIError, match="ReadTimeout"):
        list(service.client(account.key).chat.completions.create(model="gpt-4", messages=SHORT, stream=True))

    (row,) = await wait_for_row(pool, account.user_id)
    assert not row["success"] and row["status_code"] == 502 and row["completion_tokens"] >= 2
    assert row["credits_used"] > 0


@pytest.mark.parametrize("options", [5, "yes", [], True])
async def test_stream_options_that_is_not_an_object_is_a_400(pool, upstreams, start_service, make_account, options):
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    body = {"model": "gpt-4", "messages": SHORT, "stream": True, "stream_options": options}
    response = post_chat(service, account.key, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_stream_options"
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0
    assert not upstreams["openai"].requests


# --- section 4: the hold is the most a request can cost ------------------------------------------


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ({}, {"max_tokens": OUTPUT_LIMIT}),
        ({"max_tokens": 10**12}, {"max_tokens": OUTPUT_LIMIT}),
        ({"max_completion_tokens": 10**12}, {"max_completion_tokens": OUTPUT_LIMIT}),
        ({"max_completion_tokens": 20, "max_tokens": 900}, {"max_completion_tokens": 20, "max_tokens": 20}),
        ({"max_tokens": 30}, {"max_tokens": 30}),
    ],
)
async def test_the_max_tokens_sent_upstream_is_the_one_the_hold_was_computed_for(
    pool, upstreams, start_service, make_account, sent, expected
):
    upstreams["openai"].usage = (3, 5)
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    response = post_chat(service, account.key, {"model": "gpt-4", "messages": SHORT, **sent})

    assert response.status_code == 200
    received = upstreams["openai"].requests[0]["body"]
    assert {k: received[k] for k in ("max_tokens", "max_completion_tokens") if k in received} == expected
    cap = min(expected.values())
    hold = await hold_of(pool, account.user_id)
    assert hold["amount"] == gpt4_credits(min(prompt_tokens_upper_bound(SHORT), LIMIT), cap)


async def test_an_upstream_that_ignores_max_tokens_is_charged_no_more_than_the_hold(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].usage = (3, 100_000)
    upstreams["openai"].words = ["w"] * 300  # it delivered more words than it was allowed tokens
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    completion = service.client(account.key).chat.completions.create(model="gpt-4", messages=SHORT, max_tokens=40)

    hold = await hold_of(pool, account.user_id)
    assert completion.usage.completion_tokens == 40
    assert Decimal(completion.usage.model_extra["cost"]) == hold["charged"] <= hold["amount"]


def image(detail: str | None) -> dict:
    part: dict = {"url": "https://example.com/cat.png"}
    if detail is not None:
        part["detail"] = detail
    return {"type": "image_url", "image_url": part}


async def test_images_are_held_by_their_per_part_bound(pool, upstreams, start_service, make_account):
    upstreams["anthropic"].usage = (40 * 1445, 10)  # 40 high-detail images as gpt-4o bills them
    service = start_service(upstreams)
    account = await make_account(credits_="1000")
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}] + [image("high")] * 40}]

    response = post_chat(
        service, account.key, {"model": "claude-3-haiku-20240307", "messages": messages, "max_tokens": 10}
    )

    assert response.status_code == 200
    hold = await hold_of(pool, account.user_id)
    bound = prompt_tokens_upper_bound(messages, None)
    assert bound > 40 * IMAGE_HIGH_TOKENS
    # haiku $0.25/$1.25 per 1M, the prompt bounded by its 200k context window and held at its
    # dearest input-side price a chat usage can report: a 5-minute cache write, $0.30
    held = ((min(bound, 200_000) * Decimal("0.30") + 10 * Decimal("1.25")) / 1_000_000 / Decimal("0.1")).quantize(
        Decimal("0.000001")
    )
    assert hold["amount"] == held
    assert hold["charged"] == Decimal(response.json()["usage"]["cost"]) <= hold["amount"]
    row = (await wait_for_row(pool, account.user_id))[0]
    assert row["prompt_tokens"] == 40 * 1445 and row["usage_anomaly"] is None


async def test_low_bitrate_audio_is_held_and_charged_by_its_per_part_bound(
    pool, upstreams, start_service, make_account
):
    # 100 s of 6 kbit/s audio: 75,000 bytes, ~1,000 audio tokens (75 bytes a token, not 250)
    audio = base64.b64encode(bytes(75_000)).decode()
    upstreams["openai"].usage = (1000 + 20, 5)
    service = start_service(upstreams)
    account = await make_account(credits_="1000")
    part = {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "Transcribe this."}, part]}]

    response = post_chat(service, account.key, {"model": "gpt-4", "messages": messages, "max_tokens": 10})

    assert response.status_code == 200
    row = (await wait_for_row(pool, account.user_id))[0]
    assert row["prompt_tokens"] == 1020 and row["usage_anomaly"] is None
    assert prompt_tokens_upper_bound(messages) >= len(audio) // 16
    assert Decimal(response.json()["usage"]["cost"]) == gpt4_credits(1020, 5)


@pytest.mark.parametrize(
    "part",
    [
        {"type": "file", "file": {"file_id": "file-123"}},
        {"type": "input_audio", "input_audio": {"data": "not base64!!", "format": "wav"}},
        {"type": "video", "video": {}},
        {"type": "image_url", "image_url": {"url": "x", "detail": "ultra"}},
    ],
)
async def test_parts_that_cannot_be_bounded_are_a_400(pool, upstreams, start_service, make_account, part):
    service = start_service(upstreams)
    account = await make_account(credits_="100")
    messages = [{"role": "user", "content": [{"type": "text", "text": "Look"}, part]}]

    response = post_chat(service, account.key, {"model": "gpt-4", "messages": messages})

    assert response.status_code == 400 and response.json()["error"]["code"] == "unsupported_content_part"
    assert response.json()["error"]["param"] == "messages[0].content[1]"
    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0
    assert not upstreams["openai"].requests


async def test_settle_llm_request_never_charges_more_than_the_hold(pool, make_user):
    user = await make_user(credits="100")
    hold_id = await pool.fetchval("SELECT hold_id FROM reserve_credits($1, 2, 'req_x')", user)
    usage = {"request_id": "req_x", "user_id": str(user), "model": "gpt-4"}

    row = await pool.fetchrow("SELECT * FROM settle_llm_request($1, 50, $2::jsonb)", hold_id, json.dumps(usage))

    assert row["charged"] == 2
    log = await pool.fetchrow("SELECT * FROM llm_usage_log WHERE request_id = 'req_x'")
    assert log["credits_used"] == 2 and "above the hold" in log["usage_anomaly"]
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", user) == 98


async def test_a_settle_short_of_its_cost_says_so_on_the_usage_row(pool, make_user):
    """Credits taken back while the request ran (a refund, a lost dispute, an operator): the settle
    charges what is left, and the usage row says what it could not charge (it once said nothing)."""
    user = await make_user()
    # purchased credits: a refund takes back what a payment bought, never granted credits
    await pool.execute("SELECT add_user_credits($1, 10, 'purchase', 'pi_bought')", user)
    hold_id = await pool.fetchval("SELECT hold_id FROM reserve_credits($1, 8, 'req_short')", user)
    await pool.execute("SELECT refund_purchased_credits($1, 7, 'pi_taken_back', 'refunded')", user)
    usage = {"request_id": "req_short", "user_id": str(user), "model": "gpt-4"}

    row = await pool.fetchrow("SELECT * FROM settle_llm_request($1, 5, $2::jsonb)", hold_id, json.dumps(usage))

    assert row["charged"] == 3 and row["shortfall"] == 2
    log = await pool.fetchrow("SELECT * FROM llm_usage_log WHERE request_id = 'req_short'")
    assert log["credits_used"] == 3
    note = log["usage_anomaly"]
    assert "charged 3.000000 of its cost 5" in note and "could no longer cover 2" in note


async def test_a_settle_that_charges_its_whole_cost_leaves_no_shortfall_note(pool, make_user):
    user = await make_user(credits="10")
    hold_id = await pool.fetchval("SELECT hold_id FROM reserve_credits($1, 8, 'req_whole')", user)
    usage = {"request_id": "req_whole", "user_id": str(user), "model": "gpt-4"}

    await pool.fetchrow("SELECT * FROM settle_llm_request($1, 5, $2::jsonb)", hold_id, json.dumps(usage))

    assert await pool.fetchval("SELECT usage_anomaly FROM llm_usage_log WHERE request_id = 'req_whole'") is None


# --- section 5: a hold lives exactly as long as its request --------------------------------------


async def test_settling_an_expired_hold_respects_the_other_open_holds(pool, make_user):
    user = await make_user(credits="10")
    late = await pool.fetchval("SELECT hold_id FROM reserve_credits($1, 8, 'req_late', interval '1 millisecond')", user)
    await asyncio.sleep(0.01)
    live = await pool.fetchrow("SELECT * FROM reserve_credits($1, 9, 'req_live')", user)
    assert live["success"], "the late hold expired and gave its credits back"

    settled = await pool.fetchrow("SELECT * FROM settle_credit_hold($1, 8)", late)

    assert settled["charged"] == 1, "only what the live hold does not hold"
    assert await pool.fetchval("SELECT balance - credits_held FROM user_credits WHERE user_id = $1", user) == 0


async def test_a_live_streams_hold_is_extended_while_it_runs(pool, upstreams, start_service, make_account):
    upstreams["openai"].words = ["w"] * 8
    upstreams["openai"].chunk_delay = 0.5  # a 4 s stream on a 1 s hold
    service = start_service(upstreams, hold_ttl_seconds=1)
    account = await make_account(credits_="100")
    stream = service.async_client(account.key).chat.completions.create(model="gpt-4", messages=SHORT, stream=True)
    seen = []

    async for chunk in await stream:
        seen.append(chunk)
        if len(seen) in (3, 6):
            await pool.execute("SELECT expire_credit_holds()")
            assert (await hold_of(pool, account.user_id))["status"] == "held"

    (row,) = await wait_for_row(pool, account.user_id)
    assert row["success"] and (await hold_of(pool, account.user_id))["status"] == "settled"


async def test_the_hold_outlives_a_slow_upstream(pool, upstreams, start_service, make_account):
    upstreams["openai"].delay = 2.5  # a non-streamed answer slower than the 1 s hold
    service = start_service(upstreams, hold_ttl_seconds=1)
    account = await make_account(credits_="100")
    body = {"model": "gpt-4", "messages": SHORT}
    reply = asyncio.ensure_future(asyncio.to_thread(post_chat, service, account.key, body))
    while not upstreams["openai"].requests:
        await asyncio.sleep(0.01)

    await asyncio.sleep(1.5)
    await pool.execute("SELECT expire_credit_holds()")

    assert (await hold_of(pool, account.user_id))["status"] == "held"
    assert (await reply).status_code == 200
    assert (await hold_of(pool, account.user_id))["status"] == "settled"


async def test_an_expired_metered_hold_leaves_a_usage_row(pool, make_user):
    user = await make_user(credits="10")
    usage = {"request_id": "req_lost", "user_id": str(user), "model": "gpt-4", "provider": "openai"}
    await pool.execute(
        "SELECT * FROM reserve_llm_request($1, 2, 'req_lost', interval '1 millisecond', 'x', $2::jsonb)",
        user,
        json.dumps(usage),
    )
    await asyncio.sleep(0.01)

    assert await pool.fetchval("SELECT expire_credit_holds()") == 1

    row = await pool.fetchrow("SELECT * FROM llm_usage_log WHERE request_id = 'req_lost'")
    assert not row["success"] and row["credits_used"] == 0 and row["usage_anomaly"] == "hold_expired_unsettled"
    # a settle that arrives late still charges (within what is free) and replaces the placeholder
    hold_id = await pool.fetchval("SELECT hold_id FROM credit_holds WHERE request_id = 'req_lost'")
    await pool.execute(
        "SELECT * FROM settle_llm_request($1, 1.5, $2::jsonb)", hold_id, json.dumps({**usage, "prompt_tokens": 7})
    )
    row = await pool.fetchrow("SELECT * FROM llm_usage_log WHERE request_id = 'req_lost'")
    assert row["success"] and row["credits_used"] == Decimal("1.5") and row["prompt_tokens"] == 7
    await assert_reconciled(pool)


async def test_a_stream_the_client_cuts_before_the_first_token_pays_its_prompt(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].first_delay = 1.0
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    async def ask() -> None:
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream(
                "POST",
                f"{service.url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {account.key}"},
                json={"model": "gpt-4", "messages": SHORT, "stream": True},
            ),
        ):
            raise AssertionError("the 200 waits for the first chunk")

    asking = asyncio.create_task(ask())
    while not upstreams["openai"].requests:
        await asyncio.sleep(0.01)
    asking.cancel()  # the client leaves after the upstream accepted the request, before any token
    with pytest.raises(asyncio.CancelledError):
        await asking

    (row,) = await wait_for_row(pool, account.user_id)
    assert row["status_code"] == 499 and not row["success"]
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] == 0 and row["credits_used"] > 0
    assert (await hold_of(pool, account.user_id))["status"] == "settled"


@pytest.mark.parametrize(
    "answer",
    [
        {"raw_stream": []},  # 200, text/event-stream, and nothing in it
        {"raw_stream": [b"data: {not json\n\n", b"data: [1, 2]\n\n", b"data: [DONE]\n\n"]},
        {"raw_stream": [b"<html><body>Bad gateway</body></html>"]},
        {"raw_body": b"<html><body>Bad gateway</body></html>", "raw_content_type": "text/html"},
        {"raw_body": b"", "raw_content_type": "application/json"},
        {"ignore_stream": True},  # a plain JSON completion: the provider ignored `stream`
    ],
    ids=["empty", "invalid-json", "html-as-sse", "html", "empty-json", "json-completion"],
)
async def test_a_streamed_request_answered_without_a_stream_is_a_502_and_free(
    pool, upstreams, start_service, make_account, answer
):
    for key, value in answer.items():
        setattr(upstreams["openai"], key, value)
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    response = post_chat(service, account.key, {"model": "gpt-4", "messages": SHORT, "stream": True})

    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "upstream_invalid_response"
    assert response.headers["x-request-id"].startswith("req_")
    # the provider took the request (a plain completion may have been generated): not retried
    assert response.headers["x-should-retry"] == "false"
    (row,) = await wait_for_row(pool, account.user_id)
    assert (row["success"], row["status_code"], row["credits_used"]) == (False, 502, 0)
    assert (await hold_of(pool, account.user_id))["status"] == "released"
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", account.user_id) == 100
    await assert_reconciled(pool)


async def test_an_upstream_failure_before_the_first_token_charges_the_prompt_and_is_not_retried(
    pool, upstreams, start_service, make_account
):
    # the provider took the request (its 200 came), then broke: it may have generated (issue 17 item 1)
    upstreams["openai"].drop_after = 0
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    with pytest.raises(openai.APIStatusError) as raised:
        list(service.client(account.key).chat.completions.create(model="gpt-4", messages=SHORT, stream=True))

    assert raised.value.status_code == 502 and raised.value.response.headers["x-should-retry"] == "false"
    (row,) = await wait_for_row(pool, account.user_id)
    assert row["credits_used"] > 0 and row["completion_tokens"] == 0 and not row["success"]
    assert "before the stream's first chunk after the request was sent" in row["error_message"]
    assert (await hold_of(pool, account.user_id))["status"] == "settled"


async def test_a_cheaper_level_pays_the_fallback_providers_own_level(pool, upstreams, start_service, make_account):
    upstreams["openrouter"].status = 503  # eco's preferred providers cannot serve
    upstreams["together"].status = 503
    upstreams["openai"].usage = (1000, 500)
    service = start_service(upstreams)
    account = await make_account(credits_="100", power_level="eco")
    messages = [{"role": "user", "content": "Say hello. " + "0123456789" * 100}]

    raw = service.client(account.key).chat.completions.with_raw_response.create(model="gpt-4", messages=messages)

    # openai is preferred by balanced (1.0) and precision (1.5): eco pays at least 1.0, not 0.7
    assert Decimal(raw.headers["x-credits-charged"]) == gpt4_credits(1000, 500) == Decimal("0.6")
    (row,) = await wait_for_row(pool, account.user_id)
    assert row["provider"] == "openai" and row["cost_multiplier"] == 1
    hold = await hold_of(pool, account.user_id)
    assert hold["amount"] >= gpt4_credits(min(prompt_tokens_upper_bound(messages), LIMIT), OUTPUT_LIMIT)


# --- endings that lose the database --------------------------------------------------------------


async def test_a_settle_that_fails_answers_the_reply_and_releases_the_hold_never_a_500(
    pool, upstreams, start_service, make_account
):
    service = start_service(upstreams)
    account = await make_account(credits_="10")
    await pool.execute("ALTER FUNCTION settle_llm_request(uuid, numeric, jsonb) RENAME TO settle_llm_request_gone")

    response = post_chat(service, account.key, {"model": "gpt-4", "messages": SHORT})

    assert response.status_code == 200, "the upstream answered: the client gets the answer"
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the fake upstream."
    assert response.json()["usage"]["cost"] == "0" and response.headers["x-credits-charged"] == "0"
    (row,) = await wait_for_row(pool, account.user_id)
    assert not row["success"] and row["credits_used"] == 0
    assert (await hold_of(pool, account.user_id))["status"] == "released"
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", account.user_id) == 10


async def test_a_settle_cut_by_a_lost_connection_is_completed_when_the_database_answers_again(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].usage = (4, 5)
    upstreams["openai"].delay = 0.5
    service = start_service(upstreams)
    account = await make_account(credits_="10")
    blocker = await pool.acquire()
    try:
        reply = asyncio.ensure_future(
            asyncio.to_thread(post_chat, service, account.key, {"model": "gpt-4", "messages": SHORT})
        )
        while await hold_of(pool, account.user_id) is None:
            await asyncio.sleep(0.01)
        # the user's row locked: the settle waits on it, and then its connection is killed
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("SELECT 1 FROM user_credits WHERE user_id = $1 FOR UPDATE", account.user_id)
        waiting = None
        while waiting is None:
            waiting = await pool.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%settle_llm_request%'"
            )
            await asyncio.sleep(0.02)
        await pool.execute("SELECT pg_terminate_backend($1)", waiting)

        response = await reply
        assert response.status_code == 200 and response.headers["x-credits-remaining"] == "pending"
        assert response.json()["usage"]["cost"] == str(gpt4_credits(4, 5))
        await transaction.rollback()
    finally:
        await pool.release(blocker)

    (row,) = await wait_for_row(pool, account.user_id)
    assert row["success"] and row["credits_used"] == gpt4_credits(4, 5)
    assert (await hold_of(pool, account.user_id))["status"] == "settled"
    await assert_reconciled(pool)


# --- the property, end to end --------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)
reported_usages = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "prompt_tokens": st.one_of(json_values, st.integers(-5, 10**12)),
            "completion_tokens": st.one_of(json_values, st.integers(-5, 10**12)),
        },
    ),
)


async def test_for_any_reported_usage_the_charge_is_within_the_hold_with_exactly_one_row(
    pool, upstreams, start_service, make_account
):
    service = start_service(upstreams)
    account = await make_account(credits_="1000")
    answers: list[tuple[str, str]] = []

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(reported_usages, st.booleans())
    def one_request(usage, stream):
        upstreams["openai"].usage_json = json.dumps(usage)
        body = {"model": "gpt-4", "messages": SHORT, "max_tokens": 20, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        response = post_chat(service, account.key, body)
        assert response.status_code == 200
        if stream:
            last = [line for line in response.text.splitlines() if line.startswith("data: {")][-1]
            cost = json.loads(last[6:])["usage"]["cost"]
        else:
            cost = response.json()["usage"]["cost"]
        answers.append((response.headers["x-request-id"], cost))

    one_request()
    assert answers

    for request_id, cost in answers:
        rows = await pool.fetch("SELECT * FROM llm_usage_log WHERE request_id = $1", request_id)
        hold = await pool.fetchrow("SELECT * FROM credit_holds WHERE request_id = $1", request_id)
        assert len(rows) == 1 and hold["status"] == "settled"
        assert 0 <= rows[0]["credits_used"] == hold["charged"] == Decimal(cost) <= hold["amount"]
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", account.user_id) == 0
    await assert_reconciled(pool)


async def test_a_client_that_leaves_a_non_streamed_request_pays_what_the_upstream_did(
    pool, upstreams, start_service, make_account
):
    """Leaving while the upstream works does not cancel the request: the answer that arrives is
    settled as if it had been delivered (the provider did the work and bills for it)."""
    upstreams["openai"].delay = 1.0
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    async def ask() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            await client.post(
                f"{service.url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {account.key}"},
                json={"model": "gpt-4", "messages": SHORT},
            )

    asking = asyncio.create_task(ask())
    while not upstreams["openai"].requests:
        await asyncio.sleep(0.01)
    asking.cancel()  # the client leaves while the upstream is still working
    with pytest.raises(asyncio.CancelledError):
        await asking

    (row,) = await wait_for_row(pool, account.user_id)
    assert row["success"] and row["completion_tokens"] > 0 and row["credits_used"] > 0
    assert (await hold_of(pool, account.user_id))["status"] == "settled"
    await assert_reconciled(pool)
