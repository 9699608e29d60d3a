"""fetch_ops: the service runs the very scripts/ops files psql runs, and gets the rows psql prints."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.ops import OpsError, fetch_ops, list_queries, parse_statement
from tests.psql import psql
from tests.test_ops import seeded  # noqa: F401 (the fixture: users, purchases, usage, holds, Stripe)

# Files that are not one SELECT: psql runs them, fetch_ops refuses them.
NOT_ONE_SELECT = {
    "create_balance_record": "INSERT is not a SELECT",
    "last_transaction": "2 statements",
    "rebuild_indexes": "3 statements",
    "vacuum_tables": "3 statements",
}
# Every type the ops queries return, read as the server's text output: what psql prints.
TEXT_TYPES = (
    "numeric",
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "bool",
    "uuid",
    "date",
    "timestamp",
    "timestamptz",
    "interval",
    "name",
)


@pytest.fixture
async def text_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection that decodes every value from PostgreSQL's text form, untouched."""
    conn = await asyncpg.connect(database_url)
    for name in TEXT_TYPES:
        await conn.set_type_codec(name, schema="pg_catalog", encoder=str, decoder=str, format="text")
    yield conn
    await conn.close()


def psql_rows(database_url: str, name: str, variables: dict[str, str]) -> list[list[str]]:
    (query,) = [q for q in list_queries() if q.name == name]
    return list(csv.reader(io.StringIO(psql(database_url, file=query.path, variables=variables, csv=True))))


def as_psql_prints(rows: list[asyncpg.Record]) -> list[list[str]]:
    return [["" if value is None else value for value in row.values()] for row in rows]


async def test_every_select_query_returns_the_rows_psql_prints(database_url, text_conn, seeded):  # noqa: F811
    compared = set()
    for query in list_queries():
        variables = {"user_id": seeded["alice"]} if "user_id" in query.variables else {}
        if query.name in NOT_ONE_SELECT:
            with pytest.raises(OpsError, match=NOT_ONE_SELECT[query.name]):
                await fetch_ops(text_conn, query.name, variables)
            continue
        # a query that reads now() (holds' age_seconds) can tick between two runs: the rows psql
        # prints before and after fetch_ops agree only when nothing ticked, and then fetch_ops's
        # rows, read in between, must be those too
        for _ in range(5):
            before = psql_rows(database_url, query.name, variables)
            fetched = as_psql_prints(await fetch_ops(text_conn, query.name, variables))
            if before == psql_rows(database_url, query.name, variables):
                break
        assert fetched == before, query.name
        compared.add(query.name)

    assert {q.name for q in list_queries()} - compared == set(NOT_ONE_SELECT)
    # the fixture's data reaches the queries the dashboard reads: they are not compared empty
    for name in (
        "revenue_by_package",
        "revenue_by_month",
        "holds",
        "stripe_events",
        "spend_by_model_30d",
        "usage_by_day_30d",
        "top_users_30d",
        "credits_sold_vs_used",
        "failed_requests",
    ):
        assert psql_rows(database_url, name, {}), name


async def test_a_variable_is_a_parameter_whose_type_postgresql_infers(pool, seeded):  # noqa: F811
    """The plain pool, default codecs: the uuid user_id is sent as text and typed by the server."""
    (balance,) = await fetch_ops(pool, "check_user_balance", {"user_id": seeded["alice"]})
    recent = await fetch_ops(pool, "recent_transactions", {"user_id": seeded["alice"], "unused": "x"})
    nobody = await fetch_ops(pool, "recent_transactions", {"user_id": str(uuid.uuid4())})

    assert str(balance["user_id"]) == seeded["alice"] and str(balance["balance"]) == "251.833333"
    assert [r["transaction_type"] for r in recent] == ["usage", "usage", "usage", "refund", "purchase"]
    assert nobody == []


async def test_a_missing_variable_or_unknown_query_is_refused(pool):
    with pytest.raises(OpsError, match=re.escape("check_user_balance needs the variable(s) user_id")):
        await fetch_ops(pool, "check_user_balance")
    with pytest.raises(OpsError, match="no ops query named 'nonesuch'"):
        await fetch_ops(pool, "nonesuch")


async def test_a_hostile_value_stays_a_value(pool, seeded):  # noqa: F811
    with pytest.raises(asyncpg.DataError):  # not a uuid: asyncpg's uuid type refuses it, nothing runs
        await fetch_ops(pool, "recent_transactions", {"user_id": "' OR true --"})


async def test_a_variable_meant_as_a_date_or_number_goes_through_text(pool, database_url):
    """What fetch_ops's docstring tells a new file to write: the same answer from psql and asyncpg."""
    text = "SELECT :'since'::text::timestamptz < now() AS past, :'n'::text::int + 1 AS next"
    variables = {"since": "2028-02-29 23:59:59+00", "n": "41"}
    statement = parse_statement(text, "t")

    row = await pool.fetchrow(statement.sql, *(variables[v] for v in statement.parameters))

    assert (row["past"], row["next"]) == (False, 42)
    assert psql(database_url, sql=text, variables=variables).strip() == "f|42"


def test_the_same_variable_twice_is_one_parameter():
    parsed = parse_statement("SELECT :'a', :'größe' WHERE x = :'a' AND y::text = ':''a'''", "t")

    assert parsed.sql == "SELECT $1, $2 WHERE x = $1 AND y::text = ':''a'''"
    assert parsed.parameters == ("a", "größe")


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("\\set x 1\nSELECT :'x'", r"psql meta-command \(\\set\)"),
        ("SELECT 1 \\gx", r"psql meta-command \(\\gx\)"),
        ("SELECT * FROM t LIMIT :n", "':n' is a psql variable fetch_ops does not bind"),
        ("SELECT a[1:2]", "':2' is a psql variable fetch_ops does not bind"),  # psql's, when 2 is set
        ("SELECT :größe", "':größe' is a psql variable fetch_ops does not bind"),
        ('SELECT * FROM :"table"', "':\"table\"' is a psql variable fetch_ops does not bind"),
        ("SELECT :{?x}", r"':\{\?x\}' is a psql variable fetch_ops does not bind"),
        ("SELECT 1; SELECT 2;", "2 statements"),
        ("SELECT 1;;", "an empty statement"),
        ("-- only a comment\n", "0 statements"),
        ("DELETE FROM t", "DELETE is not a SELECT"),
        ("SELECT 'unclosed", "quote is not closed"),
        ("SELECT /* /* */ 1", "comment is not closed"),
        ("SELECT $q$ body", r"dollar quote \$q\$ is not closed"),
    ],
)
def test_what_only_psql_understands_is_refused_not_guessed(text, refusal):
    with pytest.raises(OpsError, match=refusal):
        parse_statement(text, "t")


@pytest.mark.parametrize(
    "quoted",
    ["':x'", "E'\\' :x'", "$$ :x; \\set $$", "$tag$ :'x' $$ $tag$", '":x"', "/* :x; /* \\d */ */", "-- :x;\n"],
)
def test_nothing_in_quotes_or_comments_is_a_variable_or_a_statement_end(quoted):
    parsed = parse_statement(f"SELECT {quoted} 1, :'v';\n-- trailing comment", "t")

    assert parsed.parameters == ("v",)
    assert parsed.sql == f"SELECT {quoted} 1, $1\n-- trailing comment"


@given(st.text())
def test_any_string_literal_is_left_as_written(value):
    literal = "'" + value.replace("'", "''") + "'"

    parsed = parse_statement(f"SELECT {literal} AS v, :'name'", "t")

    assert parsed == parse_statement(f"SELECT {literal} AS v, :'name'", "t")
    assert (parsed.sql, parsed.parameters) == (f"SELECT {literal} AS v, $1", ("name",))
