"""The built-in demo provider, run alone, called by the real openai and anthropic SDKs: every API
shape parses, usage is deterministic, includes cached tokens and stays within the gateway's bounds;
malformed input is a 400 in each API's own error shape."""

from __future__ import annotations

import base64
import json
import math
import struct

import anthropic
import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount

from api.app import create_app
from api.demo import create_demo_app
from ledger.settings import Settings
from tests.fake_upstream import ServerThread

SAID = "Say hello."
REPLY = "Hello from the demo provider. You said: Say hello."
# "Say hello." is 10 bytes and 2 words; the reply is 50 bytes and 9 words
REPLY_TOKENS = math.ceil(50 / 4)  # 13
CHAT_PROMPT = math.ceil(10 / 4) + 4 + 3  # one message: 4 bytes a token + message overhead + reply priming
PLAIN_PROMPT = math.ceil(10 / 4)  # a completions/embeddings prompt has no message around it


@pytest.fixture(scope="module")
def server():
    # mounted at /v1 as a provider serves it: the anthropic SDK posts to {base_url}/v1/messages
    thread = ServerThread(Starlette(routes=[Mount("/v1", app=create_demo_app())])).start()
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def oai(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="demo", max_retries=0)


@pytest.fixture(scope="module")
def claude(server):
    return anthropic.Anthropic(base_url=server.url, api_key="demo", max_retries=0)


USER = [{"role": "user", "content": SAID}]


def test_chat_completion_counts_cached_tokens(oai):
    first = oai.chat.completions.create(model="gpt-4o", messages=USER)
    again = oai.chat.completions.create(model="gpt-4o", messages=USER)

    assert first.choices[0].message.content == REPLY and first.choices[0].finish_reason == "stop"
    usage = first.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (CHAT_PROMPT, REPLY_TOKENS)
    assert usage.prompt_tokens_details.cached_tokens == CHAT_PROMPT // 2
    assert usage.completion_tokens_details.reasoning_tokens == 0
    assert again.usage == usage


def test_chat_stream_sends_usage_last_when_asked(oai):
    chunks = list(
        oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True})
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == CHAT_PROMPT
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == CHAT_PROMPT // 2
    plain = list(oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    assert all(c.usage is None for c in plain)


def test_chat_stops_at_max_tokens(oai):
    completion = oai.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=5)
    assert completion.choices[0].finish_reason == "length"
    # 19 bytes: 5 tokens; one more word is 29 bytes, 8 tokens
    assert completion.choices[0].message.content == "Hello from the demo"
    assert completion.usage.completion_tokens == 5


def test_responses_not_streamed(oai):
    response = oai.responses.create(model="gpt-4o", input=SAID, instructions="Be brief.")
    assert response.output_text == REPLY and response.status == "completed"
    usage = response.usage
    # instructions are a message too: "Be brief." is 9 bytes
    prompt = math.ceil((10 + 9) / 4) + 2 * 4 + 3
    assert (usage.input_tokens, usage.output_tokens) == (prompt, REPLY_TOKENS)
    assert usage.input_tokens_details.cached_tokens == prompt // 2
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_responses_streamed_in_openais_event_order(oai, server):
    with oai.responses.stream(model="o4-mini", input=USER, reasoning={"effort": "low"}) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    words = len(REPLY.split(" "))
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * words,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == REPLY
    usage = final.usage
    assert usage.output_tokens_details.reasoning_tokens == 8 and usage.output_tokens == REPLY_TOKENS + 8
    assert usage.input_tokens == CHAT_PROMPT and usage.input_tokens_details.cached_tokens == CHAT_PROMPT // 2
    # each event names its type on the `event:` line as OpenAI's do
    raw = httpx.post(f"{server.url}/v1/responses", json={"model": "m", "input": SAID, "stream": True}).text
    blocks = [b for b in raw.split("\n\n") if b]
    assert all(b.split("\n")[0] == f"event: {json.loads(b.split('data: ', 1)[1])['type']}" for b in blocks)


def test_embeddings_float_and_base64(oai, server):
    default = oai.embeddings.create(model="text-embedding-3-small", input=[SAID, "other"])  # base64 on the wire
    floats = oai.embeddings.create(model="text-embedding-3-small", input=SAID, encoding_format="float")
    short = oai.embeddings.create(model="text-embedding-3-small", input=SAID, dimensions=256)

    assert len(default.data) == 2 and len(default.data[0].embedding) == 1536
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert default.data[0].embedding != default.data[1].embedding
    assert len(short.data[0].embedding) == 256
    assert math.fsum(v * v for v in short.data[0].embedding) == pytest.approx(1.0, abs=1e-5)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == PLAIN_PROMPT
    assert default.usage.prompt_tokens == PLAIN_PROMPT + math.ceil(5 / 4)
    # base64 is little-endian float32, as OpenAI sends it
    raw = httpx.post(
        f"{server.url}/v1/embeddings", json={"model": "m", "input": SAID, "encoding_format": "base64", "dimensions": 4}
    ).json()
    decoded = struct.unpack("<4f", base64.b64decode(raw["data"][0]["embedding"]))
    again = oai.embeddings.create(model="m", input=SAID, dimensions=4, encoding_format="float")
    assert list(decoded) == pytest.approx(again.data[0].embedding, abs=1e-6)
    tokens = oai.embeddings.create(model="m", input=[[1, 2, 3]], encoding_format="float")
    assert tokens.usage.prompt_tokens == 3


def test_legacy_completions(oai):
    completion = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt=SAID, max_tokens=100)
    assert completion.choices[0].text == REPLY and completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (PLAIN_PROMPT, REPLY_TOKENS)
    assert completion.usage.prompt_tokens_details.cached_tokens == PLAIN_PROMPT // 2
    chunks = list(
        oai.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt=SAID,
            max_tokens=100,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == REPLY
    assert chunks[-1].usage.completion_tokens == REPLY_TOKENS
    # the legacy API's default max_tokens is 16: the reply stops there
    short = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello. " * 10)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens <= 16


def test_anthropic_messages_split_cache_reads_and_writes(claude):
    message = claude.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=USER)
    assert message.content[0].text == REPLY and message.stop_reason == "end_turn"
    usage = message.usage
    read = CHAT_PROMPT // 2
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (
        CHAT_PROMPT - read,
        read,
        0,
    )
    assert usage.output_tokens == REPLY_TOKENS

    cached_system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    marked = claude.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=USER, system=cached_system)
    prompt = math.ceil((10 + 9) / 4) + 2 * 4 + 3
    usage = marked.usage
    assert usage.cache_read_input_tokens == prompt // 2 and usage.cache_creation_input_tokens == prompt // 4
    assert usage.input_tokens == prompt - prompt // 2 - prompt // 4
    assert usage.cache_creation.ephemeral_1h_input_tokens == prompt // 4
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0


def test_anthropic_stream_events_and_usage(claude):
    with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=100, messages=USER) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[:3] == ["message_start", "content_block_start", "content_block_delta"]  # the SDK drops ping
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert final.content[0].text == REPLY
    assert final.usage.output_tokens == REPLY_TOKENS
    assert final.usage.cache_read_input_tokens == CHAT_PROMPT // 2


def test_anthropic_stream_sends_ping_and_named_events(server):
    body = {"model": "m", "max_tokens": 100, "messages": USER, "stream": True}
    raw = httpx.post(f"{server.url}/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}).text
    names = [b.split("\n")[0].removeprefix("event: ") for b in raw.split("\n\n") if b]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    delta = json.loads(next(b for b in raw.split("\n\n") if b.startswith("event: message_delta")).split("data: ")[1])
    assert delta["usage"]["output_tokens"] == REPLY_TOKENS


def test_anthropic_count_tokens_and_stop_at_max_tokens(claude):
    counted = claude.messages.count_tokens(model="claude-sonnet-4-6", messages=USER)
    assert counted.input_tokens == CHAT_PROMPT
    cut = claude.messages.create(model="claude-sonnet-4-6", max_tokens=3, messages=USER)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens <= 3


def test_models_in_each_apis_shape(oai, claude):
    assert "gpt-4o" in [m.id for m in oai.models.list()]
    assert "claude-sonnet-4-6" in [m.id for m in claude.models.list()]


OPENAI_PATHS = ["/chat/completions", "/completions", "/embeddings", "/responses"]
ANTHROPIC_PATHS = ["/messages", "/messages/count_tokens"]
MALFORMED = [
    b"{",
    b"[]",
    b"NaN",
    b"{}",
    b'{"model": 1}',
    b'{"model": "m", "messages": "x", "input": 3, "prompt": {}}',
    b'{"model": "m", "messages": [1], "input": [], "prompt": []}',
    b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "input": "x", "prompt": "x", "max_tokens": -1,'
    b' "max_output_tokens": 2, "max_completion_tokens": true, "dimensions": 0, "system": 5}',
    b'{"model": "m", "input": "x", "prompt": "x", "stream_options": 1, "messages": [{"role": "user", "content": 1}],'
    b' "encoding_format": 7, "instructions": 3}',
    b'{"model": "m", "input": ["x", 1], "prompt": [[]], "messages": [{"role": "bot", "content": "x"}],'
    b' "max_tokens": 1}',
    b'{"model": "m", "input": "x", "dimensions": 100000, "encoding_format": "hex", "messages": [],'
    b' "max_output_tokens": "9"}',
    b"[" * 5000 + b"]" * 5000,
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_input_is_a_400_in_each_apis_shape(server, body):
    for path in OPENAI_PATHS + ANTHROPIC_PATHS:
        response = httpx.post(f"{server.url}/v1{path}", content=body)
        assert response.status_code == 400, (path, response.text)
        error = response.json()
        if path in ANTHROPIC_PATHS:
            assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        else:
            assert error["error"]["type"] == "invalid_request_error" and error["error"]["message"]


def test_sdk_errors_parse(oai, claude):
    with pytest.raises(openai.BadRequestError, match="messages"):
        oai.chat.completions.create(model="gpt-4o", messages=[])
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        claude.messages.create(model="m", max_tokens=0, messages=USER)


prompts = st.text(st.characters(codec="utf-8"), max_size=300)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _words(text: str) -> int:
    return len(text.split())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(said=prompts, system=prompts)
def test_usage_stays_within_the_gateways_bounds(server, said, system):
    def post(path, body):
        content = json.dumps(body).encode()
        response = httpx.post(f"{server.url}/v1{path}", content=content, headers={"content-type": "application/json"})
        assert response.status_code == 200, response.text
        return len(content), response.json()

    chat = [{"role": "system", "content": system}, {"role": "user", "content": said}]
    prompt_words = _words(said) + _words(system)
    size, answer = post("/chat/completions", {"model": "m", "messages": chat})
    usage, reply = answer["usage"], answer["choices"][0]["message"]["content"]
    assert prompt_words <= usage["prompt_tokens"] <= size
    assert usage["prompt_tokens_details"]["cached_tokens"] <= usage["prompt_tokens"]
    assert usage["completion_tokens"] >= _words(reply)

    size, answer = post("/responses", {"model": "m", "input": said, "instructions": system, "reasoning": {}})
    usage = answer["usage"]
    assert prompt_words <= usage["input_tokens"] <= size
    assert usage["input_tokens_details"]["cached_tokens"] <= usage["input_tokens"]
    assert usage["output_tokens_details"]["reasoning_tokens"] <= usage["output_tokens"]
    reply = answer["output"][0]["content"][0]["text"]
    assert usage["output_tokens"] - usage["output_tokens_details"]["reasoning_tokens"] >= _words(reply)

    body = {"model": "m", "max_tokens": 1000, "messages": [{"role": "user", "content": said}]}
    if system:
        body["system"] = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
    size, answer = post("/messages", body)
    usage = answer["usage"]
    whole = usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
    assert prompt_words <= whole <= size and usage["input_tokens"] >= 0
    assert usage["output_tokens"] >= _words(answer["content"][0]["text"])

    if said:
        for path, key in (("/completions", "prompt"), ("/embeddings", "input")):
            size, answer = post(path, {"model": "m", key: said, "max_tokens": 1000})
            assert _words(said) <= answer["usage"]["prompt_tokens"] <= size


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.dictionaries(
        st.sampled_from(
            [
                "model",
                "messages",
                "input",
                "prompt",
                "max_tokens",
                "system",
                "stream",
                "dimensions",
                "instructions",
                "reasoning",
            ]
        ),
        json_values,
    )
)
def test_any_json_body_is_answered_never_a_500(server, body):
    for path in OPENAI_PATHS + ANTHROPIC_PATHS:
        response = httpx.post(f"{server.url}/v1{path}", json=body)
        assert response.status_code in (200, 400), (path, body, response.text)


def test_with_no_providers_the_service_routes_each_api_to_the_demo_app():
    settings = Settings(database_url="postgresql://unused/none", host="0.0.0.0", port=8123, providers=None)  # noqa: S104
    providers = create_app(settings, settings.database_url).state.services.providers

    assert {name: config.api for name, config in providers.items()} == {"demo": "openai", "demo-anthropic": "anthropic"}
    assert {config.base_url for config in providers.values()} == {"http://127.0.0.1:8123/demo/v1"}


def test_embeddings_answers_are_bounded(oai):
    with pytest.raises(openai.BadRequestError, match="at most"):
        oai.embeddings.create(model="m", input=["x"] * 2048, dimensions=3072)
