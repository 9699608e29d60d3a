"""The ceiling for the metered service: a pass-through with no billing at all, on the service's own
server stack (Starlette on uvicorn with uvloop + httptools, one shared aiohttp ClientSession).

    python scripts/bench/bare_proxy.py --port PORT --upstream http://127.0.0.1:UPSTREAM_PORT/v1

POST /v1/chat/completions is forwarded as is; a streamed answer is relayed chunk by chunk.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.cli.service import server_stack


def create_app(upstream: str) -> Starlette:
    target = f"{upstream}/chat/completions"

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=1000)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            app.state.session = session
            yield

    async def chat(request: Request) -> Response:
        session: aiohttp.ClientSession = request.app.state.session
        body = await request.body()
        answer = await session.post(target, data=body, headers={"Content-Type": "application/json"})
        if answer.content_type != "text/event-stream":
            try:
                return Response(await answer.read(), status_code=answer.status, media_type=answer.content_type)
            finally:
                answer.release()

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.content.iter_any():
                    yield chunk
            finally:
                answer.release()

        return StreamingResponse(relay(), status_code=answer.status, media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    loop, http = server_stack()
    uvicorn.run(
        create_app(args.upstream),
        host="127.0.0.1",
        port=args.port,
        loop=loop,
        http=http,
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
