"""Members and roles under generated sequences of changes, against a model: a workspace that has an
owner keeps one whatever is tried, each refused change writes nothing, and the audit log holds one
row per change made, none for a refused or empty one."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.accounts import workspaces
from ledger.accounts.actor import OPERATOR, acting
from ledger.errors import LastOwner
from tests.accounts.helpers import make_person, make_team

PEOPLE = 4
ROLES = ["OWNER", "ADMIN", "DEVELOPER", "VIEWER"]
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.integers(0, PEOPLE - 1), st.sampled_from(ROLES)),
        st.tuples(st.just("remove"), st.integers(0, PEOPLE - 1), st.just("")),
    ),
    max_size=12,
)


def sequences() -> list[list[tuple[str, int, str]]]:
    drawn: list[list[tuple[str, int, str]]] = []

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(OPS)
    def collect(ops: list[tuple[str, int, str]]) -> None:
        drawn.append(ops)

    collect()
    # the sequences that matter most, whatever Hypothesis draws
    drawn.append([("set", 0, "VIEWER"), ("remove", 0, "")])
    drawn.append([("set", 1, "OWNER"), ("set", 0, "VIEWER"), ("set", 1, "ADMIN"), ("remove", 1, "")])
    return drawn


async def apply(conn: Any, workspace_id: Any, person: Any, op: str, role: str) -> None:
    if op == "remove":
        await workspaces.remove_member(conn, workspace_id, person)
    elif await workspaces.role_in(conn, workspace_id, person) is None:
        await workspaces.add_member(conn, workspace_id, person, role)  # type: ignore[arg-type]
    else:
        await workspaces.change_role(conn, workspace_id, person, role)  # type: ignore[arg-type]


async def test_a_workspace_keeps_an_owner_whatever_its_members_do(pool):
    for ops in sequences():
        team = await make_team(pool)
        people = [team.people["OWNER"]] + [(await make_person(pool))[0] for _ in range(PEOPLE - 1)]
        model: dict[int, str] = {0: "OWNER"}
        changes = 0
        for op, who, role in ops:
            after = dict(model)
            if op == "remove":
                after.pop(who, None)
            else:
                after[who] = role
            refused = "OWNER" in model.values() and "OWNER" not in after.values()
            try:
                async with acting(pool, OPERATOR) as conn:
                    await apply(conn, team.workspace_id, people[who], op, role)
            except LastOwner:
                assert refused, (ops, op, who, role)
                continue
            assert not refused, (ops, op, who, role)
            changes += after != model
            model = after
        held = await pool.fetch(
            "SELECT user_id, role FROM workspace_members WHERE workspace_id = $1", team.workspace_id
        )
        assert {row["user_id"]: row["role"] for row in held} == {people[i]: r for i, r in model.items()}, ops
        logged = await pool.fetchval(
            "SELECT count(*) FROM audit_logs WHERE workspace_id = $1 AND resource_type = 'member'", team.workspace_id
        )
        assert logged == 1 + changes, ops  # the owner's own joining, then one row per change


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(pool):
    for _ in range(5):
        team = await make_team(pool)
        second, _ = await make_person(pool)
        async with acting(pool, OPERATOR) as conn:
            await workspaces.add_member(conn, team.workspace_id, second, "OWNER")

        async def demote(person: Any, workspace_id: Any = team.workspace_id) -> bool:
            try:
                async with acting(pool, OPERATOR) as conn:
                    await workspaces.change_role(conn, workspace_id, person, "ADMIN")
            except LastOwner:
                return False
            return True

        results = await asyncio.gather(demote(team.people["OWNER"]), demote(second))
        assert sorted(results) == [False, True]
        owners = await pool.fetchval(
            "SELECT count(*) FROM workspace_members WHERE workspace_id = $1 AND role = 'OWNER'", team.workspace_id
        )
        assert owners == 1
