"""MeteredStream against a client that stops reading: cut after the send timeout, and settled."""

from __future__ import annotations

import anyio

from api.streaming import MeteredStream


async def test_a_client_that_stops_reading_is_cut_after_the_send_timeout_and_the_stream_settles():
    endings: list[bool] = []
    extended: list[int] = []

    async def events():
        while True:  # an upstream that never ends
            yield b"data: {}\n\n"
            await anyio.sleep(0)

    async def finish(disconnected: bool) -> None:
        endings.append(disconnected)

    async def keepalive() -> None:
        extended.append(1)

    never = anyio.Event()
    sent: list[dict] = []

    async def receive() -> dict:
        await never.wait()  # the client never says it left
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)
        if len(sent) > 3:
            await never.wait()  # the client's socket is full: it stopped reading

    stream = MeteredStream(events(), finish, keepalive=keepalive, keepalive_every=0.05, send_timeout=0.3)
    with anyio.fail_after(10):
        await stream({"type": "http"}, receive, send)

    assert endings == [True], "cut as a client that went away, and finished (settled) once"
    assert extended, "the hold was extended while the client was stuck"
