"""A streamed response whose ending, however it comes, is always accounted for.

Starlette's StreamingResponse leaves an abandoned generator to be finalised whenever the
garbage collector gets to it; a metered stream must settle at once, whether it ended, the client
went away, or the upstream broke. So the finish callback runs in a shielded finally.

Nothing is committed before the upstream has proved to be streaming: the first chunk is awaited
before the 200 is sent, and a `LedgerError` the events raise before their first chunk (the upstream's
body is not an SSE stream of its API) is answered as that error, instead of a 200.
A client that leaves while the first chunk is awaited is still seen (and billed as one that left).

While the stream lives, `keepalive` runs every `keepalive_every` seconds (it extends the request's
hold, so a hold never expires under a live request). A client that reads nothing for
`send_timeout` seconds is cut: a slow reader cannot pin the service, nor the upstream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

import anyio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from api.errors import ledger_error_response
from ledger.errors import LedgerError
from ledger.gateway.engine import MeteredEvents

log = logging.getLogger("ledger.proxy")


class MeteredStream(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncGenerator[bytes, None],
        finish: Callable[[bool], Awaitable[None]],
        headers: Mapping[str, str] | None = None,
        *,
        keepalive: Callable[[], Awaitable[None]] | None = None,
        keepalive_every: float = 60.0,
        send_timeout: float = 60.0,
    ) -> None:
        # Response.__init__ would declare Content-Length: 0 for the empty body; a stream has none.
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", **(headers or {})})
        self.extra_headers = dict(headers or {})
        self.events = events
        self.finish = finish
        self.keepalive = keepalive
        self.keepalive_every = keepalive_every
        self.send_timeout = send_timeout

    @classmethod
    def of(cls, stream: MeteredEvents) -> MeteredStream:
        return cls(
            stream.events,
            stream.finish,
            stream.headers,
            keepalive=stream.keepalive,
            keepalive_every=stream.keepalive_every,
            send_timeout=stream.send_timeout,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = False
        completed = False  # the response was sent whole: a disconnect after it is no client leaving

        async def relay(cancel: anyio.CancelScope) -> None:
            nonlocal disconnected, completed

            async def timed(message: Message) -> bool:
                with anyio.move_on_after(self.send_timeout) as sending:
                    await send(message)
                if sending.cancelled_caught:
                    log.warning("a streaming client read nothing for %s s: cut", self.send_timeout)
                return not sending.cancelled_caught

            try:
                first: bytes | None = await self.events.__anext__()
            except StopAsyncIteration:
                first = None
            except LedgerError as refused:  # not a stream: nothing was committed, answer the error
                completed = True
                await ledger_error_response(refused, self.extra_headers, scope["path"])(scope, receive, send)
                cancel.cancel()
                return
            if await timed({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}):
                sent = first is None or await timed({"type": "http.response.body", "body": first, "more_body": True})
                if sent:
                    async for chunk in self.events:
                        if not await timed({"type": "http.response.body", "body": chunk, "more_body": True}):
                            break
                    else:
                        completed = True  # set first: uvicorn wakes `watch` with a disconnect as it completes
                        if await timed({"type": "http.response.body", "body": b"", "more_body": False}):
                            cancel.cancel()
                            return
            disconnected = True  # cut for not reading
            cancel.cancel()

        async def keep() -> None:
            if self.keepalive is None:
                return
            while True:
                await anyio.sleep(self.keepalive_every)
                try:
                    await self.keepalive()
                except Exception:
                    log.exception("could not extend a live stream's hold; trying again next time")

        async def watch(cancel: anyio.CancelScope) -> None:
            nonlocal disconnected
            while (await receive())["type"] != "http.disconnect":
                pass
            if not completed:  # uvicorn also reports a disconnect once the response is complete
                disconnected = True
            cancel.cancel()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(relay, group.cancel_scope)
                group.start_soon(watch, group.cancel_scope)
                group.start_soon(keep)
        except* OSError:  # a task group raises its tasks' errors as a group
            disconnected = not completed  # the client went away while we were sending
        finally:
            with anyio.CancelScope(shield=True):
                await self.events.aclose()
                await self.finish(disconnected)
