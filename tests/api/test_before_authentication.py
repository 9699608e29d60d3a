"""Work before authentication (issue 17, item 11): a metered route refuses a missing, malformed or
unknown key from the headers alone, before any of the body is read, and a body must arrive
within its time. Before, the whole body was read and parsed first: a 30 MiB body announced by a
caller with no valid key cost a worker ~850 MB, and a body trickled in held a worker forever."""

from __future__ import annotations

import json
import secrets
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.api.test_bad_input import written

METERED = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"]
ANTHROPIC = ["/v1/messages", "/v1/messages/count_tokens"]
THIRTY_MIB = 30 * 1024 * 1024


def send_head_then_wait(url: str, path: str, auth: bytes, length: int, wait: float = 10.0) -> tuple[float, bytes]:
    """Sends a request's headers announcing `length` bytes of body, sends none of it, and reads what
    comes back within `wait` seconds: (seconds until the first byte of the answer, the answer)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=wait) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
        sock.sendall(head.encode() + auth + b"\r\n")
        started = time.monotonic()
        try:
            first = sock.recv(65536)
        except TimeoutError:
            return wait, b""
        took = time.monotonic() - started
        data = first
        sock.settimeout(1.0)
        try:
            while chunk := sock.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data and data.rstrip().endswith(b"}"):
                    break
        except TimeoutError:
            pass
    return took, data


def body_of(answer: bytes) -> dict:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


def wrong_key() -> str:
    return "sk-lg-" + secrets.token_urlsafe(32)  # the shape of a real key, unknown to the service


@pytest.fixture
def service(upstreams, start_service):
    return start_service(upstreams)


@pytest.mark.parametrize("path", METERED)
@pytest.mark.parametrize("auth", ["unknown", "missing", "malformed", "revoked"])
async def test_an_openai_route_refuses_a_bad_key_before_reading_the_body(service, pool, make_account, path, auth):
    account = await make_account(credits_="100")
    if auth == "revoked":
        await pool.execute("UPDATE gateway_api_keys SET is_active = false WHERE id = $1", account.key_id)
    header = {
        "unknown": f"Authorization: Bearer {wrong_key()}\r\n",
        "missing": "",
        "malformed": "Authorization: Bearer not-a-key\r\n",
        "revoked": f"Authorization: Bearer {account.key}\r\n",
    }[auth]
    before = await written(pool)

    took, answer = send_head_then_wait(service.url, path, header.encode(), THIRTY_MIB)

    # the answer came while 30 MiB of body were still owed: the route never waited for them
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert took < 5
    error = body_of(answer)["error"]
    assert error["code"] == "invalid_api_key" and set(error) == {"message", "type", "param", "code"}
    assert await written(pool) == before


@pytest.mark.parametrize("path", ANTHROPIC)
async def test_an_anthropic_route_refuses_a_bad_key_before_reading_the_body_in_its_shape(service, pool, path):
    took, answer = send_head_then_wait(service.url, path, f"x-api-key: {wrong_key()}\r\n".encode(), THIRTY_MIB)

    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert took < 5
    body = body_of(answer)
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"


async def test_a_valid_key_is_still_served_and_remembered(service, make_account, upstreams):
    account = await make_account(credits_="100")
    client = service.client(account.key)
    for _ in range(3):
        reply = client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "Hi"}])
        assert reply.choices[0].message.content


async def test_a_key_revoked_while_remembered_is_still_refused_before_any_hold(service, pool, make_account):
    """The gate remembers a valid key for a while; the hold's own SQL call still checks it."""
    account = await make_account(credits_="100")
    client = service.client(account.key)
    client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "Hi"}])
    await pool.execute("UPDATE gateway_api_keys SET is_active = false WHERE id = $1", account.key_id)
    before = await written(pool)

    response = service.post("/v1/chat/completions", account.key, {"model": "gpt-4", "messages": []})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    response = service.post(
        "/v1/chat/completions", account.key, {"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]}
    )
    assert response.status_code == 401
    assert await written(pool) == before


async def test_a_body_that_trickles_in_slower_than_its_timeout_is_a_408_with_nothing_held(
    upstreams, start_service, make_account, pool
):
    service = start_service(upstreams, body_read_timeout_seconds=1.0)
    account = await make_account(credits_="100")
    body = json.dumps({"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]}).encode()
    parts = urlsplit(service.url)
    before = await written(pool)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nAuthorization: Bearer {account.key}\r\n\r\n"
        )
        sock.sendall(head.encode())
        started = time.monotonic()
        answer = b""
        for byte in body:  # one byte every 0.3 s: the whole would take minutes
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            sock.settimeout(0.3)
            try:
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            if answer:
                break
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert took < 8
    assert body_of(answer)["error"]["code"] == "request_timeout"
    assert await written(pool) == before
    assert upstreams["openai"].requests == []


async def test_a_body_sent_in_time_in_many_pieces_is_served(upstreams, start_service, make_account):
    service = start_service(upstreams, body_read_timeout_seconds=5.0)
    account = await make_account(credits_="100")
    body = json.dumps({"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]}).encode()
    parts = urlsplit(service.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nAuthorization: Bearer {account.key}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        for start in range(0, len(body), 10):
            sock.sendall(body[start : start + 10])
            time.sleep(0.05)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
