"""A streamed response whose ending, however it comes, is always accounted for.

Starlette's StreamingResponse leaves an abandoned generator to be finalised whenever the
garbage collector gets to it; a metered stream must settle at once, whether it ended, the client
went away, or the upstream broke. So the finish callback runs in a shielded finally.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class MeteredStream(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncGenerator[bytes, None],
        finish: Callable[[bool], Awaitable[None]],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # Response.__init__ would declare Content-Length: 0 for the empty body; a stream has none.
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", **(headers or {})})
        self.events = events
        self.finish = finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = False

        async def relay(cancel: anyio.CancelScope) -> None:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self.events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            cancel.cancel()

        async def watch(cancel: anyio.CancelScope) -> None:
            nonlocal disconnected
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected = True
            cancel.cancel()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(relay, group.cancel_scope)
                group.start_soon(watch, group.cancel_scope)
        except* OSError:  # a task group raises its tasks' errors as a group
            disconnected = True  # the client went away while we were sending
        finally:
            with anyio.CancelScope(shield=True):
                await self.events.aclose()
                await self.finish(disconnected)
