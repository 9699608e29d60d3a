"""A fake OpenAI upstream that answers every chat completion at once, for the benchmarks.

    python scripts/bench/instant_upstream.py PORT

A bare asyncio protocol on uvloop with httptools' parser and canned answers, so it costs far less
per request than anything measured through it. A body with `"stream": true` gets a server-sent
event stream (chunked, usage in the last event), any other a JSON completion; both report 12
prompt and 20 completion tokens. Prints `ready` once it listens on 127.0.0.1:PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import cast

import httptools

USAGE = {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32}
BASE = {"id": "chatcmpl-bench", "created": 1, "model": "gpt-4"}
TEXT = "Hello from the instant upstream."


def plain() -> bytes:
    message = {"role": "assistant", "content": TEXT}
    body = json.dumps(
        {
            **BASE,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": USAGE,
        }
    ).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def streamed() -> bytes:
    chunk = {**BASE, "object": "chat.completion.chunk"}
    events = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": word}, "finish_reason": None}]}
        for word in TEXT.split(" ")
    ]
    events.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**chunk, "choices": [], "usage": USAGE})
    pieces = [f"data: {json.dumps(event)}\n\n".encode() for event in events] + [b"data: [DONE]\n\n"]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + chunked


PLAIN, STREAMED = plain(), streamed()


class InstantUpstream(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not asyncio's class
        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        wants_stream = b'"stream":true' in b"".join(self.body).replace(b" ", b"")
        self.transport.write(STREAMED if wants_stream else PLAIN)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(InstantUpstream, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
