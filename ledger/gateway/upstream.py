"""Talking to upstream providers over one shared aiohttp session: fall over in order, and read
their answers (whole, within a size cap) or their SSE streams (line by line, within a line cap)."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp

from ledger.gateway.routing import Route

log = logging.getLogger("ledger.upstream")

# What a provider that cannot be reached, or breaks mid-answer, raises.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError, OSError)


def failure_name(exc: BaseException) -> str:
    """A transport failure's name as this service reports it (in error messages and usage rows):
    stable names that say what happened, whichever HTTP client raised it."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "ConnectTimeout"
    if isinstance(exc, TimeoutError):  # aiohttp's socket read timeout is a TimeoutError
        return "ReadTimeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "ConnectError"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return "RemoteProtocolError"  # cut short, or not valid HTTP (a bad status line, bad chunking)
    return type(exc).__name__


HEADER_LINE_BYTES = 64 * 1024
MAX_HEADERS = 1000


def open_session() -> aiohttp.ClientSession:
    """The one session every upstream call shares (pooled, kept-alive connections). Timeouts are
    set per request from the provider's configuration; cookies are never kept between users."""
    connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0, keepalive_timeout=30)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=60.0),
        # providers send long trace and cookie headers: aiohttp's 8 KiB line limit would turn such an
        # answer into a failure; these bounds still cap what one answer's headers can hold
        max_line_size=HEADER_LINE_BYTES,
        max_field_size=HEADER_LINE_BYTES,
        max_headers=MAX_HEADERS,
    )


class UpstreamResponse:
    """A provider's answer: status and headers, and either its whole body (`content`) or, for a
    successful stream, the open connection to read it from (`iter_bytes`, then `aclose`)."""

    def __init__(self, raw: aiohttp.ClientResponse, content: bytes | None = None) -> None:
        self.raw = raw
        self.status_code = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.content = content if content is not None else b""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        async for data in self.raw.content.iter_any():
            yield data

    async def aclose(self) -> None:
        _let_go(self.raw)


def _let_go(raw: aiohttp.ClientResponse) -> None:
    if raw.content.at_eof():
        raw.release()  # read whole: the connection goes back to the pool
    else:
        raw.close()  # abandoned mid-body: the connection cannot be reused


class AllProvidersFailed(Exception):
    def __init__(self, failures: list[str], status_code: int | None) -> None:
        super().__init__("; ".join(failures) or "no provider could be tried")
        self.failures = failures
        self.status_code = status_code


class LostAfterSending(Exception):
    """The request was sent to `route` and no answer came (a read timeout, the connection dropped
    while waiting or while reading the answer): the provider may be generating it, and bills for
    it. It is never sent to another provider (see docs/upstream-timeouts.md)."""

    def __init__(self, route: Route, failure: str, *, timed_out: bool | None = None) -> None:
        super().__init__(f"{route.provider}: {failure} after the request was sent")
        self.route = route
        self.failure = failure
        self.timed_out = failure.startswith("ReadTimeout") if timed_out is None else timed_out


# A provider's front (its load balancer, Cloudflare's 524) giving up on waiting for its origin:
# the origin got the request and may still be generating it.
GATEWAY_TIMEOUTS = (504, 524)


# What a provider can raise before it has received the request: it cannot have started on it.
NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,  # refused, unreachable, DNS, TLS handshake
    aiohttp.ConnectionTimeoutError,  # no connection within the connect timeout
    aiohttp.InvalidURL,
)


def may_have_started(exc: BaseException) -> bool:
    """Whether the provider may have received the whole request before `exc` (a read timeout, a
    connection dropped after the request was written): then it may be generating the answer.
    Only a failure to connect proves it cannot have; anything later is taken as "it may have"."""
    return not isinstance(exc, NOT_SENT_ERRORS)


class UpstreamBodyTooLarge(Exception):
    """A provider's non-streamed answer is larger than the service reads (it is not a chat reply)."""

    def __init__(self, route: Route, most: int) -> None:
        super().__init__(f"{route.provider} answered with a body over {most} bytes")
        self.route = route


async def read_capped(route: Route, raw: aiohttp.ClientResponse, most: int) -> UpstreamResponse:
    """The response read whole, never buffering more than `most` bytes (decoded): what is over is
    UpstreamBodyTooLarge, and the rest of the body is never read. The caller closes `raw`."""
    declared = raw.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > most and "content-encoding" not in raw.headers:
        raise UpstreamBodyTooLarge(route, most)
    chunks: list[bytes] = []
    size = 0
    async for data in raw.content.iter_any():
        size += len(data)
        if size > most:
            raise UpstreamBodyTooLarge(route, most)
        chunks.append(data)
    return UpstreamResponse(raw, b"".join(chunks))


def is_retryable(route: Route, status_code: int) -> bool:
    """429 and 5xx mean "try the next provider" (but a 504 or 524 ends the request: open_first),
    and so does a provider refusing the platform's own
    key (401/403: the operator's problem, not the caller's); any other error is the request's own.
    A 1xx or 3xx (redirects are never followed) is an answer in place of a completion: the provider
    cannot have generated one, so the next provider is tried too."""
    if status_code in (401, 403):
        return not route.is_byok
    return status_code == 429 or status_code >= 500 or status_code < 200 or 300 <= status_code < 400


COMPLETION_STATUSES = (200, 201)  # a 2xx answer of a metered API; 202, 203, 206 ... are not completions


def url_for(route: Route, path: str) -> str:
    return route.config.base_url.rstrip("/") + path


def _api_key(route: Route) -> str:
    return route.byok_key.api_key if route.byok_key is not None else route.config.api_key.get_secret_value()


ANTHROPIC_VERSION = "2023-06-01"  # sent when the client sent none


def auth_headers(route: Route) -> dict[str, str]:
    """The provider's key (the platform's, or the user's own), as the provider's API takes it."""
    headers = {"Content-Type": "application/json"}
    key = _api_key(route)
    if route.config.api == "anthropic":
        if key:
            headers["x-api-key"] = key
    elif key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def timeouts(route: Route, *, stream: bool) -> aiohttp.ClientTimeout:
    """No total: a long answer is not a failure. A connect timeout, then the longest wait for the
    provider's next bytes: the whole answer's wait for a non-streamed request (timeout_s), the
    idle time between events for a stream (stream_idle_timeout_s)."""
    config = route.config
    read = (config.stream_idle_timeout_s or config.timeout_s) if stream else config.timeout_s
    return aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout_s, sock_read=read)


async def open_first(
    session: aiohttp.ClientSession,
    routes: list[Route],
    request_for: Callable[[Route], tuple[str, bytes]],
    *,
    stream: bool,
    max_body: int = 32 * 1024 * 1024,
    headers: Mapping[str, str] | None = None,
    free_to_repeat: bool = False,
) -> tuple[Route, UpstreamResponse]:
    """The first route that answers without a connect error, timeout, 429, 5xx or platform-key refusal.

    `request_for(route)` is the path and JSON body sent to that route (its max_tokens is the one
    its hold allows), with `headers` and the route's key. A successful streamed response comes
    back open (the caller reads and closes it); any other response is read whole (at most
    `max_body` bytes: else UpstreamBodyTooLarge).

    Only a route that cannot have started on the request (connect errors, refusals by status) is
    fallen over from: a failure after the request was sent is LostAfterSending, and ends it,
    unless the request is `free_to_repeat` (counting tokens generates nothing).
    """
    failures: list[str] = []
    last_status: int | None = None
    for route in routes:
        path, body = request_for(route)
        sent = dict(headers or {})
        if route.config.api == "anthropic":
            sent.setdefault("anthropic-version", ANTHROPIC_VERSION)
        sent.update(auth_headers(route))
        try:
            raw = await session.post(
                url_for(route, path),
                data=body,
                headers=sent,
                # a provider's redirect is its answer, never followed (the key must not travel on)
                allow_redirects=False,
                timeout=timeouts(route, stream=stream),
            )
        except TRANSPORT_ERRORS as exc:
            if may_have_started(exc) and not free_to_repeat:
                log.warning("provider %s failed after the request was sent: %s", route.provider, failure_name(exc))
                raise LostAfterSending(route, failure_name(exc)) from None
            failures.append(f"{route.provider}: {failure_name(exc)}")
            log.warning("provider %s failed: %s; trying the next", route.provider, failure_name(exc))
            continue
        if stream and raw.status in COMPLETION_STATUSES:
            response = UpstreamResponse(raw)
        else:
            try:
                response = await read_capped(route, raw, max_body)
            except TRANSPORT_ERRORS as exc:
                if not is_retryable(route, raw.status) and not free_to_repeat:  # maybe the completion
                    raise LostAfterSending(route, f"{failure_name(exc)} while reading the answer") from None
                failures.append(f"{route.provider}: HTTP {raw.status}, then {failure_name(exc)} while reading")
                continue
            finally:
                _let_go(raw)
        if response.status_code in GATEWAY_TIMEOUTS and not free_to_repeat:
            await response.aclose()
            failure = f"HTTP {response.status_code} (its gateway timed out waiting for it)"
            raise LostAfterSending(route, failure, timed_out=True)
        if is_retryable(route, response.status_code):
            last_status = response.status_code
            failures.append(f"{route.provider}: HTTP {response.status_code}")
            log.warning("provider %s answered %s; trying the next", route.provider, response.status_code)
            await response.aclose()
            continue
        return route, response
    raise AllProvidersFailed(failures, last_status)


MAX_SSE_LINE = 1 << 20  # bytes; a longer line is dropped (no chat chunk is this big)


async def sse_lines(response: UpstreamResponse, max_line: int = MAX_SSE_LINE) -> AsyncIterator[str]:
    """The response's lines (split on \\n, \\r\\n or \\r), never holding more than `max_line` bytes of
    one line: an upstream sending an endless line cannot exhaust memory; the line is skipped."""
    buffer = b""
    dropping = False
    async for data in response.iter_bytes():
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
