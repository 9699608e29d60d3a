"""Who calls the administration API (/v1/organization/...): an admin key of one workspace. Gateway
keys are refused here, as admin keys are on the metered APIs (their shapes differ)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from starlette.requests import Request

from api.errors import ApiError
from api.services import services
from ledger.accounts.actor import Actor, acting
from ledger.accounts.admin_keys import ADMIN_KEY_PREFIX, authenticate_admin_key
from ledger.accounts.roles import Permission, Role, may
from ledger.gateway.keys import KEY_PREFIX
from ledger.logs import request_id_var


@dataclass(frozen=True, slots=True)
class Caller:
    workspace_id: uuid.UUID
    role: Role
    actor: Actor

    def require(self, permission: Permission) -> None:
        if not may(self.role, permission):
            raise ApiError(
                403, f"Your role ({self.role.lower()}) may not {permission.value}.", code="permission_denied"
            )


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def organization_caller(request: Request) -> Caller:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401, "You didn't provide an admin key. Send it as 'Authorization: Bearer sk-lg-admin-...'.",
            code="invalid_api_key",
        )  # fmt: skip
    holder = await authenticate_admin_key(services(request).pool, token)
    if holder is None:
        if token.startswith(KEY_PREFIX) and not token.startswith(ADMIN_KEY_PREFIX):
            message = "A gateway key cannot use the administration API: use an admin key (sk-lg-admin-...)."
        else:
            message = "Incorrect admin key provided, or the key was deleted."
        raise ApiError(401, message, code="invalid_api_key")
    actor = Actor("admin_key", str(holder.key_id), holder.prefix).at(
        client_ip(request), request.headers.get("user-agent"), request_id_var.get()
    )
    # an admin key acts with the ADMIN role's rights in its workspace (roles.py)
    return Caller(holder.workspace_id, "ADMIN", actor)


__all__ = ["Caller", "acting", "organization_caller"]
