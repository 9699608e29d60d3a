"""Malformed, oversized and hostile input: every endpoint answers a 4xx in its error shape and
writes nothing. Each case here was a 500 (or a 1.7 GB allocation) before."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.conftest import ADMIN_TOKEN, HTTP_TIMEOUT
from tests.fake_stripe import sign

MESSAGES = [{"role": "user", "content": "Hi"}]
DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_INT = b'{"amount": ' + b"9" * 5000 + b', "transaction_type": "bonus"}'


async def written(pool) -> dict[str, int]:
    """Rows per table: what a refused request must leave unchanged."""
    tables = [r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    return {t: await pool.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables}  # noqa: S608 - catalog names


def assert_error_shape(response: httpx.Response, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]


def raw_http(url: str, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """One request over a plain socket: headers that httpx would not send as written."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=HTTP_TIMEOUT) as sock:
        sock.sendall(head + b"\r\n" + body)
        data = b""
        while True:
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in data[:head_end].split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                if len(data) >= head_end + 4 + length:
                    break
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]), data


@pytest.fixture
def service(upstreams, start_service):
    return start_service(upstreams)


# --- sizes ------------------------------------------------------------------------------------------


def test_a_huge_declared_body_is_refused_before_it_is_read(service):
    """400 MB announced, a few bytes sent: the answer comes without the service waiting for the rest."""
    head = (
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Stripe-Signature: t=1,v1=00\r\nContent-Length: 419430400\r\n"
    )
    status, data = raw_http(service.url, head, b"{}")
    assert status == 413 and b"request_too_large" in data


def test_a_chunked_body_is_counted_as_it_streams(service):
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):  # up to 4 MiB; the service stops reading after 1 MiB
            sent += 65536
            yield b" " * 65536

    try:
        response = httpx.post(
            f"{service.url}/webhooks/stripe",
            content=chunks(),
            headers={"Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"},
            timeout=HTTP_TIMEOUT,
        )
    except httpx.TransportError:  # the service may close the connection before all was sent
        return
    assert_error_shape(response, 413)


@pytest.mark.parametrize(
    ("path", "setting", "limit"),
    [
        ("/admin/users", "max_body_bytes", 4096),
        ("/v1/chat/completions", "max_chat_body_bytes", 8192),
        ("/v1/responses", "max_chat_body_bytes", 8192),
        ("/webhooks/stripe", "max_webhook_body_bytes", 2048),
    ],
)
async def test_body_limits_are_settings_per_route(pool, upstreams, start_service, make_account, path, setting, limit):
    service = start_service(upstreams, **{setting: limit})
    account = await make_account(credits_="10")
    token = ADMIN_TOKEN if path.startswith("/admin") else account.key
    before = await written(pool)

    over = httpx.post(
        f"{service.url}{path}",
        content=b'{"pad": "' + b"x" * limit + b'"}',
        headers={"Authorization": f"Bearer {token}", "Stripe-Signature": "t=1,v1=00"},
        timeout=HTTP_TIMEOUT,
    )

    assert_error_shape(over, 413)
    assert await written(pool) == before


def test_the_chat_route_takes_bodies_larger_than_the_others(service):
    big = httpx.post(
        f"{service.url}/v1/chat/completions", content=b" " * (2 * 1024 * 1024), headers={"Authorization": "Bearer x"}
    )
    small_route = httpx.post(f"{service.url}/admin/users", content=b" " * (2 * 1024 * 1024), timeout=HTTP_TIMEOUT)
    assert big.status_code == 401  # read, then refused for its key, not its size
    assert_error_shape(small_route, 413)


# --- malformed JSON, on every route that reads a body -------------------------------------------------

MALFORMED = {
    "not utf-8": b'{"email": "\xff\xfe"}',
    "utf-16 with a byte order mark": '{"email": "a@example.com", "name": "x"}'.encode("utf-16"),
    "utf-32": '{"email": "a@example.com", "name": "x"}'.encode("utf-32-be"),
    "nested 100k deep": DEEP,
    "nested 100k deep in an object": b'{"a": ' + DEEP + b"}",
    "integer of 5000 digits": HUGE_INT,
    "NaN": b'{"amount": NaN, "transaction_type": "bonus"}',
    "Infinity": b'{"amount": Infinity}',
    "-Infinity": b'{"amount": -Infinity}',
    "NUL in a string": b'{"email": "a\\u0000@example.com", "name": "x\\u0000"}',
    "NUL in a key": b'{"e\\u0000": 1}',
    "lone surrogate": b'{"email": "\\ud800@example.com", "name": "\\udfff"}',
    "an array": b"[]",
    "a string": b'"x"',
    "nested 65 deep": b'{"a": ' + b"[" * 65 + b"]" * 65 + b"}",
}


def body_routes(user_id: uuid.UUID) -> list[tuple[str, str]]:
    return [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/responses"),
        ("POST", "/v1/embeddings"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens"),
        ("POST", "/v1/provider-keys"),
        ("POST", "/v1/keys"),
        ("PATCH", "/v1/account"),
        ("POST", "/v1/credits/checkout"),
        ("POST", "/v1/subscriptions/checkout"),
        ("POST", "/admin/users"),
        ("POST", f"/admin/users/{user_id}/keys"),
        ("POST", f"/admin/users/{user_id}/credits"),
        ("PATCH", f"/admin/users/{user_id}"),
        ("POST", "/admin/packages"),
        ("PATCH", f"/admin/packages/{uuid.uuid4()}"),
        ("POST", "/admin/model-prices"),
        ("PATCH", "/admin/model-prices/openai/gpt-4"),
        ("POST", "/admin/model-prices/sync"),
    ]


async def test_every_route_answers_malformed_json_with_a_400_and_writes_nothing(
    pool, upstreams, start_service, make_account, fake_stripe
):
    service = start_service(upstreams, stripe_secret_key="sk_test_x", stripe_api_base=fake_stripe.api_base)
    account = await make_account(credits_="10")
    before = await written(pool)
    failures = []
    for method, path in body_routes(account.user_id):
        token = ADMIN_TOKEN if path.startswith("/admin") else account.key
        for name, body in MALFORMED.items():
            response = httpx.request(
                method,
                f"{service.url}{path}",
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                timeout=HTTP_TIMEOUT,
            )
            if response.status_code != 400 or "error" not in response.json():
                failures.append((method, path, name, response.status_code, response.text[:200]))
    assert failures == []
    assert await written(pool) == before


@pytest.mark.parametrize("name", ["not utf-8", "nested 100k deep", "integer of 5000 digits", "NaN", "NUL in a string"])
async def test_a_signed_webhook_with_a_malformed_body_is_a_400(pool, service, name):
    body = MALFORMED[name]
    before = await written(pool)
    response = httpx.post(
        f"{service.url}/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": sign(body.decode("latin-1")), "Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT,
    )
    assert_error_shape(response, 400)
    assert await written(pool) == before


def test_a_non_utf8_webhook_with_any_signature_header_is_a_400(service):
    response = httpx.post(
        f"{service.url}/webhooks/stripe", content=b"\xff\xfe\x00", headers={"Stripe-Signature": "t=1,v1=00"}
    )
    assert_error_shape(response, 400)


# --- query strings, paths, headers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"type": "bonus\x00"},
        {"model": "gpt-4\x00"},
        {"from": "0001-01-01T00:00:00+05:00"},
        {"to": "9999-12-31T23:59:59-05:00"},
        {"from": "0000-01-01"},
        {"from": "10000-01-01"},
        {"from": "2024-01-01T00:00:00+99:00"},
        {"from": "x" * 5000},
        {"limit": "1" + "0" * 30},
        {"limit": "9" * 5000},
        {"limit": "-1"},
        {"limit": "1e3"},
        {"after": "abc"},
        {"after": "9" * 40},
        {"after": "0"},
    ],
)
async def test_account_lists_refuse_bad_filters(pool, service, make_account, params):
    account = await make_account()
    for path in ("/v1/credits/transactions", "/v1/usage"):
        response = service.get(path, account.key, **params)
        assert_error_shape(response, 400)


async def test_a_repeated_query_parameter_is_answered_not_a_500(service, make_account):
    account = await make_account()
    response = httpx.get(
        f"{service.url}/v1/usage?limit=5&limit=abc&after=1&after=2",
        headers={"Authorization": f"Bearer {account.key}"},
    )
    assert response.status_code in (200, 400)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/keys?prefix=sk-lg-%00",
        "/admin/keys?user_id=%00",
        "/admin/keys?user_id=not-a-uuid",
        "/admin/users/not-a-uuid",
        "/admin/users/%00",
        f"/admin/users/{uuid.uuid4()}%00",
    ],
)
def test_admin_reads_refuse_nul_and_malformed_ids(service, path):
    response = httpx.get(f"{service.url}{path}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code in (400, 404), response.text
    assert_error_shape(response)


def test_admin_paths_with_malformed_ids_are_4xx(service):
    for method, path in [
        ("DELETE", "/admin/keys/nope"),
        ("PATCH", "/admin/packages/nope"),
        ("PATCH", "/admin/model-prices/openai/%00"),
        ("DELETE", "/v1/provider-keys/nope"),
    ]:
        response = httpx.request(
            method,
            f"{service.url}{path}",
            json={"is_active": False},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert 400 <= response.status_code < 500, (method, path, response.text)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer sk-lg-\xe9\xe8",
        "Bearer \xff\xff",
        "Bearer sk-lg-" + "a" * 8000,
        "Basic abc",
        "Bearer",
        "Bearer    ",
    ],
)
def test_odd_authorization_headers_are_401(service, authorization):
    head = (
        b"GET /v1/credits/balance HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: "
        + authorization.encode("latin-1")
        + b"\r\n"
    )
    status, data = raw_http(service.url, head)
    assert status == 401, data[:300]


@pytest.mark.parametrize("level", [b"\xff\xfe", b"eco\xe9", b"x" * 4000, b"", b"'; DROP TABLE x; --"])
async def test_odd_power_level_headers_are_400(pool, service, make_account, level):
    account = await make_account(credits_="10")
    before = await written(pool)
    body = b'{"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]}'
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
        + b"Authorization: Bearer "
        + account.key.encode()
        + b"\r\nX-Power-Level: "
        + level
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n"
    )
    status, data = raw_http(service.url, head, body)
    if level == b"":
        assert status == 200  # an empty header is no header: the user's own level
    else:
        assert status == 400, data[:300]
        assert await written(pool) == before


def test_a_content_length_that_is_not_a_number_is_refused(service):
    status, _ = raw_http(service.url, b"POST /admin/users HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n")
    assert 400 <= status < 500


# --- BYOK ---------------------------------------------------------------------------------------------


def add_key(service, account, **body) -> httpx.Response:
    return httpx.post(
        f"{service.url}/v1/provider-keys",
        headers={"Authorization": f"Bearer {account.key}"},
        json={"provider": "openai", "api_key": "sk-users-own-key-0123456789", **body},
        timeout=HTTP_TIMEOUT,
    )


async def test_a_second_byok_key_with_the_same_name_is_a_409_and_a_freed_name_is_reusable(pool, service, make_account):
    account = await make_account(credits_="10")

    first = add_key(service, account, name="work")
    second = add_key(service, account, name="work")
    unnamed = [add_key(service, account), add_key(service, account)]
    deleted = httpx.delete(
        f"{service.url}/v1/provider-keys/{first.json()['id']}", headers={"Authorization": f"Bearer {account.key}"}
    )
    reused = add_key(service, account, name="work")

    assert first.status_code == 201
    assert_error_shape(second, 409)
    assert second.json()["error"]["code"] == "name_taken"
    assert [r.status_code for r in unnamed] == [201, 409]
    assert deleted.status_code == 200
    assert reused.status_code == 201, reused.text
    assert await pool.fetchval("SELECT count(*) FROM user_provider_keys WHERE user_id = $1", account.user_id) == 3


@pytest.mark.parametrize(
    "api_key",
    ["sk-caf\u00e9-0123456789", "sk-abc\r\nX-Evil: 1", "sk-abc\x01def0123", "sk-abc def 0123456", "sk-\u2028abcdefgh"],
)
async def test_a_byok_key_a_header_cannot_carry_is_refused_at_post(pool, upstreams, service, make_account, api_key):
    account = await make_account(credits_="10")

    refused = add_key(service, account, api_key=api_key)
    chat = service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert_error_shape(refused, 400)
    assert await pool.fetchval("SELECT count(*) FROM user_provider_keys") == 0
    assert chat.choices  # the user's requests still work
    assert upstreams["openai"].requests[-1]["headers"]["authorization"] == "Bearer sk-platform-openai"


# --- admin amounts and integers -------------------------------------------------------------------------


PRICE = {"provider": "x", "model": "m", "input_usd_per_mtok": "1", "output_usd_per_mtok": "1"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("credits", {"amount": "1e15", "transaction_type": "bonus"}),
        ("credits", {"amount": "1000000000000000", "transaction_type": "bonus"}),
        ("credits", {"amount": 10**15, "transaction_type": "admin_adjustment"}),
        ("credits", {"amount": "-1e15", "transaction_type": "admin_adjustment"}),
        ("credits", {"amount": "1e-7", "transaction_type": "bonus"}),
        ("credits", {"amount": "NaN", "transaction_type": "bonus"}),
        ("credits", {"amount": "1e999999999", "transaction_type": "bonus"}),
        ("credits", {"amount": "1", "transaction_type": "bonus", "reference": "r\x00"}),
        ("packages", {"name": "p", "credits": "1e15", "price_usd": "10"}),
        ("packages", {"name": "p", "credits": "10", "price_usd": "1e11"}),
        ("packages", {"name": "p", "credits": "10", "price_usd": "10", "discount_percentage": "1000"}),
        ("packages", {"name": "p\x00", "credits": "10", "price_usd": "10"}),
        ("model-prices", {"provider": "x", "model": "m", "input_usd_per_mtok": "1e7", "output_usd_per_mtok": "1"}),
        (
            "model-prices",
            {
                "provider": "x",
                "model": "m",
                "input_usd_per_mtok": "1",
                "output_usd_per_mtok": "1",
                "context_window": 2**31,
            },
        ),
        (
            "model-prices",
            {
                "provider": "x",
                "model": "m",
                "input_usd_per_mtok": "1",
                "output_usd_per_mtok": "1",
                "max_output_tokens": 2**63,
            },
        ),
        ("users", {"email": "a\x00@example.com"}),
        ("users", {"tier": "x" * 5000}),
        ("keys", {"name": "k", "expires_at": "0001-01-01T00:00:00+05:00"}),
        ("keys", {"name": "k", "expires_at": "9999-12-31T23:59:59-05:00"}),
        ("keys", {"name": "k\x00"}),
    ],
)
async def test_admin_fields_out_of_range_are_400s_that_write_nothing(pool, service, make_account, path, body):
    account = await make_account()
    url = {
        "credits": f"/admin/users/{account.user_id}/credits",
        "keys": f"/admin/users/{account.user_id}/keys",
        "users": "/admin/users",
        "packages": "/admin/packages",
        "model-prices": "/admin/model-prices",
    }[path]
    before = await written(pool)

    response = service.admin("POST", url, json=body)

    assert_error_shape(response, 400)
    assert await written(pool) == before


async def test_admin_changes_out_of_range_are_400s(pool, service):
    package_id = await pool.fetchval("SELECT id FROM credit_packages LIMIT 1")
    for body in ({"sort_order": 2**31}, {"sort_order": -(2**31) - 1}, {"price_usd": "1e11"}, {"credits": "1e15"}):
        response = service.admin("PATCH", f"/admin/packages/{package_id}", json=body)
        assert_error_shape(response, 400)
    for body in ({"context_window": 2**31}, {"max_output_tokens": 10**30}, {"input_usd_per_mtok": "1e7"}):
        response = service.admin("PATCH", "/admin/model-prices/openai/gpt-4", json=body)
        assert_error_shape(response, 400)
    ok = service.admin("PATCH", f"/admin/packages/{package_id}", json={"sort_order": 2**31 - 1})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"messages": "x"}', b'{"messages": [], "stream": true, "stream_options": 1}', DEEP, b"NaN"],
)
def test_the_public_demo_provider_answers_malformed_input_with_a_400(start_service, body):
    service = start_service()  # no providers: the built-in demo one is mounted
    response = httpx.post(f"{service.url}/demo/v1/chat/completions", content=body, timeout=HTTP_TIMEOUT)
    assert_error_shape(response, 400)


@pytest.mark.parametrize("signature", [b"t=\xff,v1=\xfe", b"\xff" * 3000, b"t=,v1=", b"v1=" + b"0" * 64])
def test_odd_stripe_signature_headers_are_400(pool, service, signature):
    head = (
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\nStripe-Signature: "
        + signature
        + b"\r\n"
    )
    status, data = raw_http(service.url, head, b"{}")
    assert status == 400, data[:300]


# --- the chat body: bounded parsing, and only the fields whose cost can be metered -------------------


async def test_a_chat_body_of_millions_of_tiny_values_is_refused_before_it_is_parsed(
    pool, upstreams, start_service, make_account
):
    service = start_service(upstreams, max_chat_json_separators=1000)
    account = await make_account(credits_="10")
    before = await written(pool)
    headers = {"Authorization": f"Bearer {account.key}", "Content-Type": "application/json"}
    body = b'{"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}], "x": [' + b"0," * 1000 + b"0]}"

    refused = httpx.post(f"{service.url}/v1/chat/completions", content=body, headers=headers, timeout=HTTP_TIMEOUT)

    assert_error_shape(refused, 413)
    assert refused.json()["error"]["code"] == "request_too_complex"
    assert await written(pool) == before and not upstreams["openai"].requests
    # a long text prompt is not a pile of values: its commas are far below the default bound
    prose = {"model": "gpt-4", "messages": [{"role": "user", "content": "one, two: three. " * 5000}]}
    assert start_service(upstreams).client(account.key).chat.completions.create(**prose).choices


PASSTHROUGH = {
    "models": ["anthropic/claude-3-opus", "openai/gpt-4"],
    "route": "fallback",
    "plugins": [{"id": "web", "max_results": 50}],
    "web_search_options": {"search_context_size": "high"},
    "prediction": {"type": "content", "content": "x " * 50},
    "audio": {"voice": "alloy", "format": "wav"},
    "reasoning": {"effort": "high", "max_tokens": 100000},
    "provider": {"order": ["OpenAI"]},
    "transforms": ["middle-out"],
    "best_of": 20,
    "extra_body": {"x": 1},
    "anything": None,
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *PASSTHROUGH.items(),
        ("service_tier", "priority"),
        ("service_tier", "flex"),
        ("modalities", ["text", "audio"]),
        ("modalities", ["audio"]),
        ("stream_options", {"include_usage": True, "x": 1}),
        ("tools", [{"type": "web_search_preview"}]),
        ("tools", [{"type": "function", "function": {"name": "f"}}, {"type": "code_interpreter"}]),
    ],
)
async def test_a_chat_field_whose_cost_cannot_be_metered_is_a_400_that_holds_nothing(
    pool, upstreams, service, make_account, field, value
):
    account = await make_account(credits_="10")
    before = await written(pool)

    refused = httpx.post(
        f"{service.url}/v1/chat/completions",
        json={"model": "gpt-4", "messages": MESSAGES, "max_tokens": 10, field: value},
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=HTTP_TIMEOUT,
    )

    assert_error_shape(refused, 400)
    error = refused.json()["error"]
    assert error["code"] == "unsupported_parameter" and error["param"].startswith(field)
    assert field in error["message"]
    assert await written(pool) == before and not upstreams["openai"].requests


async def test_every_meterable_openai_field_reaches_the_upstream(pool, upstreams, service, make_account):
    account = await make_account(credits_="10")
    fields = {
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "presence_penalty": 0.1,
        "frequency_penalty": 0.1,
        "logit_bias": {"50256": -100},
        "logprobs": True,
        "top_logprobs": 2,
        "user": "u-1",
        "seed": 7,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "response_format": {"type": "text"},
        "reasoning_effort": "low",
        "metadata": {"a": "b"},
        "store": False,
        "prompt_cache_key": "k",
        "safety_identifier": "s",
        "verbosity": "low",
        "service_tier": "auto",
        "modalities": ["text"],
    }

    service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES, max_tokens=10, **fields)

    sent = upstreams["openai"].requests[-1]["body"]
    assert {key: sent[key] for key in fields} == fields


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/v1/provider-keys"])
async def test_a_client_that_leaves_while_sending_its_body_is_logged_as_gone_not_as_a_500(
    pool, upstreams, start_service, make_account, caplog, path
):
    service = start_service(upstreams)
    account = await make_account(credits_="10")
    before = await written(pool)
    caplog.set_level(logging.INFO, logger="ledger.access")
    parts = urlsplit(service.url)

    with socket.create_connection((parts.hostname, parts.port), timeout=HTTP_TIMEOUT) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {account.key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"model": "gpt-4", "mess'
        )
    await asyncio.sleep(0)
    for _ in range(200):  # the server notices the closed socket on its own schedule
        if any(getattr(r, "path", None) == path for r in caplog.records if r.name == "ledger.access"):
            break
        await asyncio.sleep(0.05)

    statuses = [r.status for r in caplog.records if r.name == "ledger.access" and getattr(r, "path", None) == path]
    assert statuses == [499]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await written(pool) == before
