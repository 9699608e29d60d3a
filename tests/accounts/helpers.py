"""Teams for tests: people, a team workspace with members, an admin key, made through the same
ledger functions the service uses."""

from __future__ import annotations

import email
import email.policy
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import asyncpg

from ledger.accounts import admin_keys, people, workspaces
from ledger.accounts.actor import OPERATOR, acting
from ledger.accounts.roles import Role
from ledger.money import credits

PASSWORD = "correct horse battery staple"


@dataclass
class Team:
    workspace_id: uuid.UUID
    admin_key: str
    people: dict[Role, uuid.UUID] = field(default_factory=dict)
    emails: dict[Role, str] = field(default_factory=dict)


async def make_person(pool: asyncpg.Pool, email: str | None = None) -> tuple[uuid.UUID, str]:
    email = email or f"p{uuid.uuid4().hex[:10]}@example.com"
    async with acting(pool, OPERATOR) as conn:
        made = await people.sign_up(conn, email, PASSWORD, email_proved=True)
    return made.person["id"], email


async def make_team(pool: asyncpg.Pool, *, credits_: str = "0", roles: tuple[Role, ...] = ("OWNER",)) -> Team:
    owner, owner_email = await make_person(pool)
    async with acting(pool, OPERATOR) as conn:
        team = await workspaces.create_workspace(conn, f"Team {uuid.uuid4().hex[:6]}", owner)
        key = await admin_keys.create_admin_key(conn, team["id"], "test admin key", "operator")
    made = Team(team["id"], key.key, {"OWNER": owner}, {"OWNER": owner_email})
    for role in roles:
        if role == "OWNER":
            continue
        person, email = await make_person(pool)
        async with acting(pool, OPERATOR) as conn:
            await workspaces.add_member(conn, team["id"], person, role)
        made.people[role], made.emails[role] = person, email
    if credits_ != "0":
        await credits.add_user_credits(pool, team["id"], credits_, "purchase", f"pi_{uuid.uuid4().hex}")
    return made


def outbox_messages(folder: Path) -> list[str]:
    """Each email of the outbox folder, as its headers and decoded text."""
    found = []
    for path in sorted(folder.glob("*.eml")):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        body = mail.get_body(("plain",))
        assert body is not None
        found.append(f"To: {mail['To']}\nSubject: {mail['Subject']}\n\n{body.get_content()}")
    return found
