"""Roles and what each may do: the one permission table (the README shows the same table; a test
checks they agree).

A workspace member has one role. Admin keys act with the ADMIN role's rights. A dashboard signed
in with a gateway key (personal workspaces only) acts as OWNER: it is the wallet's one owner.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

Role = Literal["OWNER", "ADMIN", "DEVELOPER", "VIEWER"]
ROLES: tuple[Role, ...] = ("OWNER", "ADMIN", "DEVELOPER", "VIEWER")


class Permission(StrEnum):
    BUY_CREDITS = "buy credits"
    SUBSCRIBE = "subscribe or change tier"
    CHANGE_POWER_LEVEL = "change the power level"
    MANAGE_KEYS = "create and revoke gateway keys"
    MANAGE_PROVIDER_KEYS = "add and delete BYOK provider keys"
    MANAGE_MEMBERS = "change roles and remove members"
    MANAGE_INVITATIONS = "invite people and revoke invitations"
    MANAGE_PROJECTS = "create, rename and archive projects"
    MANAGE_CONTROLS = "set budgets and rate limits"
    MANAGE_NOTIFICATIONS = "manage webhooks and notification settings"
    MANAGE_ADMIN_KEYS = "create and delete admin keys"
    SEE_USAGE = "see balance, usage and transactions"
    READ_AUDIT_LOG = "read the audit log"


P = Permission
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "OWNER": frozenset(Permission),
    "ADMIN": frozenset(Permission) - {P.SUBSCRIBE},
    "DEVELOPER": frozenset({P.MANAGE_KEYS, P.SEE_USAGE}),
    "VIEWER": frozenset({P.SEE_USAGE}),
}


def may(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS[role]


def may_grant(role: Role, target: Role) -> bool:
    """Who may give (or take away) a role: an owner any; an admin any but OWNER."""
    if not may(role, P.MANAGE_MEMBERS):
        return False
    return role == "OWNER" or target != "OWNER"


def permission_table_markdown() -> str:
    """The table as the README shows it."""
    lines = ["| may | " + " | ".join(ROLES) + " |", "|---|" + "---|" * len(ROLES)]
    for permission in Permission:
        marks = " | ".join("yes" if may(role, permission) else "-" for role in ROLES)
        lines.append(f"| {permission.value} | {marks} |")
    return "\n".join(lines)
