"""Who acts: every change the service makes for a person or a key runs in a transaction that names
its actor (`ledger.actor`), and the audit triggers of sql 0019 write that name into the audit log
in the same transaction as the change."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Literal

import asyncpg

from ledger.db.executor import Connection, one_connection

ActorType = Literal["person", "admin_key", "gateway_key", "operator", "system"]


@dataclass(frozen=True, slots=True)
class Actor:
    type: ActorType
    id: str | None = None  # the person's, the key's id; None for the operator
    label: str | None = None  # what people read: an email, a key's prefix, "operator"
    person: uuid.UUID | None = None  # the person acting, if one is
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    def at(self, ip: str | None, user_agent: str | None, request_id: str | None) -> Actor:
        """The same actor, with where the request came from (an address that is not an IP is dropped)."""
        return replace(self, ip=ip_or_none(ip), user_agent=(user_agent or None) and user_agent[:300],
                       request_id=request_id)  # fmt: skip

    def as_json(self) -> str:
        return json.dumps(
            {
                "type": self.type,
                "id": self.id,
                "label": self.label,
                "person": None if self.person is None else str(self.person),
                "ip": self.ip,
                "user_agent": self.user_agent,
                "request_id": self.request_id,
            }
        )


OPERATOR = Actor("operator", None, "operator")
SYSTEM = Actor("system", None, "ledger")


def ip_or_none(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


@contextlib.asynccontextmanager
async def acting(db: asyncpg.Pool | Connection, actor: Actor) -> AsyncIterator[Connection]:
    """A transaction in which `actor` acts: every audited change made in it is logged as theirs,
    and commits or rolls back with it."""
    async with one_connection(db) as conn, conn.transaction():
        await conn.execute("SELECT set_config('ledger.actor', $1, true)", actor.as_json())
        yield conn
