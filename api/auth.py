"""Who is calling: a gateway key's owner (the /v1 surface) or the operator (the admin API)."""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import AsyncIterator

from starlette.requests import Request

from api.errors import ApiError
from api.services import services
from ledger.accounts.actor import OPERATOR, Actor, acting
from ledger.db.executor import Connection
from ledger.gateway.keys import KeyOwner, authenticate
from ledger.logs import request_id_var


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def bearer_key(request: Request) -> str:
    """The gateway key the request carries (not yet checked), or a 401 when it carries none."""
    token = _bearer(request)
    if token is None:
        raise ApiError(
            401,
            "You didn't provide an API key. Send it as 'Authorization: Bearer sk-lg-...'.",
            code="invalid_api_key",
        )
    return token


def anthropic_key(request: Request) -> str:
    """The gateway key of an Anthropic-shaped request: its SDK sends `x-api-key`, some clients a
    Bearer token (as an auth token); either is accepted."""
    token = request.headers.get("x-api-key", "").strip() or _bearer(request)
    if not token:
        raise ApiError(
            401,
            "You didn't provide an API key. Send it as 'x-api-key: sk-lg-...' or 'Authorization: Bearer sk-lg-...'.",
            code="invalid_api_key",
        )
    return token


async def gateway_owner(request: Request, *, manages: bool = False) -> KeyOwner:
    """The key's owner. `manages`: the call changes the wallet or its keys (buying, subscribing,
    keys, power level), which a team workspace's gateway keys may not do: a team's people do it
    by role, through the dashboard or the administration API."""
    token = bearer_key(request)
    owner = await authenticate(services(request).pool, token)
    if owner is None:
        raise ApiError(
            401, "Incorrect API key provided, or the key was revoked or has expired.", code="invalid_api_key"
        )
    if manages and not owner.personal:
        raise ApiError(
            403,
            "This key belongs to a team workspace: its members manage it by role, on the dashboard or with an "
            "admin key (/v1/organization/...).",
            code="permission_denied",
        )
    return owner


def require_admin(request: Request) -> None:
    configured = services(request).settings.admin_token
    if configured is None:
        raise ApiError(404, "The admin API is off: set LEDGER_ADMIN_TOKEN to turn it on.", code="admin_api_off")
    token = _bearer(request) or ""
    if not hmac.compare_digest(token.encode(), configured.get_secret_value().encode()):
        raise ApiError(401, "Incorrect admin token.", code="invalid_admin_token")


@contextlib.asynccontextmanager
async def operator_db(request: Request) -> AsyncIterator[Connection]:
    """A transaction in which the operator (the admin token's holder) acts: the audit log names
    them, with where the request came from."""
    actor = OPERATOR.at(request.client.host if request.client else None, request.headers.get("user-agent"),
                        request_id_var.get())  # fmt: skip
    async with acting(services(request).pool, actor) as conn:
        yield conn


@contextlib.asynccontextmanager
async def key_holder_db(request: Request, owner: KeyOwner) -> AsyncIterator[Connection]:
    """A transaction in which a gateway key's holder acts (the owner JSON endpoints): the audit log
    names the key."""
    actor = Actor("gateway_key", str(owner.key_id), "gateway key").at(
        request.client.host if request.client else None, request.headers.get("user-agent"), request_id_var.get()
    )
    async with acting(services(request).pool, actor) as conn:
        yield conn
