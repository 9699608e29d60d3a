"""The built-in demo provider: every API shape the gateway meters, with deterministic replies.

It lets a newcomer make a first metered call of each kind with no provider account: `ledger serve`
mounts it at /demo/v1 when LEDGER_PROVIDERS is empty and routes to it over HTTP like any real
provider, as `demo` (OpenAI's APIs: chat, responses, embeddings, completions) and as
`demo-anthropic` (Anthropic's Messages API). Replies echo the prompt; usage is deterministic and
includes cached tokens (api/demo/counts.py says how each count is made). Its models are priced
like the real ones (model_prices rows of providers `demo` and `demo-anthropic`).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.demo.completions import chat_completions, completions
from api.demo.embeddings import embeddings
from api.demo.messages import count_tokens, messages
from api.demo.responses import responses

MOUNT_PATH = "/demo/v1"

# What GET /models lists; the demo answers any model name, these are today's usual ones
OPENAI_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o4-mini", "text-embedding-3-small")
ANTHROPIC_MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6")
CREATED = 1_700_000_000  # a fixed date: the list is the same on every call


async def list_models(request: Request) -> Response:
    # The Anthropic SDK always sends anthropic-version: it gets Anthropic's list shape
    if "anthropic-version" in request.headers:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in ANTHROPIC_MODELS
        ]
        page = {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        return JSONResponse(page)
    listed = [{"id": m, "object": "model", "created": CREATED, "owned_by": "demo"} for m in OPENAI_MODELS]
    return JSONResponse({"object": "list", "data": listed})


def create_demo_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/chat/completions", chat_completions, methods=["POST"]),
            Route("/completions", completions, methods=["POST"]),
            Route("/embeddings", embeddings, methods=["POST"]),
            Route("/responses", responses, methods=["POST"]),
            Route("/messages", messages, methods=["POST"]),
            Route("/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/models", list_models, methods=["GET"]),
        ]
    )
