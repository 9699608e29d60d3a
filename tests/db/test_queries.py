"""Where SQL lives: every named query prepares against the migrated schema, every file is used,
every name used exists, and no other SQL hides in the Python (docs/development.md, "Where SQL lives")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import asyncpg
import pytest

from ledger.billing.packages import CHANGE_PACKAGE, PACKAGE_FIELDS, PackageListed, PackageOnSale, PackageRow
from ledger.billing.subscriptions import LiveSubscription, SubscriptionShown
from ledger.db.edits import assignments
from ledger.db.queries import QueryError, all_queries, queries_dir, query
from ledger.gateway.byok import ProviderKeyRow
from ledger.gateway.keys import KeyListed
from ledger.gateway.prices import CHANGE_PRICE, PRICE_FIELDS, PriceListed, PriceRow
from ledger.money.accounts import Account, UserRow
from ledger.money.history import DayUsage, TransactionRow, UsageRow

REPO = Path(__file__).resolve().parents[2]
SQL_START = re.compile(r"^\s*(?:--[^\n]*\n\s*)*(?:SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP)\s+\S")
# The rule's one-liner: one call of one function, its result as a row, a set or a value.
ONE_CALL = re.compile(r"^SELECT (?:\* FROM |1 FROM )?[a-z_][a-z0-9_]*\((?:[^()]|\([^()]*\))*\)$")
# The edits' templates (ledger/db/edits.py, the rule's documented exception), and the statements
# of the metered hot path that the engine's owner moves in this same change (issue 9).
NOT_MOVED = {
    ("ledger/gateway/prices.py", "CHANGE_PRICE"),
    ("ledger/billing/packages.py", "CHANGE_PACKAGE"),
}


def edit_statement(template: str, fields: set[str], first_param: int) -> str:
    """An edit's UPDATE as it is sent when the operator changes every allow-listed column."""
    return template.format(set_list=assignments(dict.fromkeys(fields), fields, first_param)[0])


# The row type each statement's rows are returned as: its keys must be the statement's columns.
ROW_TYPES: dict[str, type] = {
    query("account_by_user"): Account,
    query("provider_keys_of_user"): ProviderKeyRow,
    query("insert_provider_key"): ProviderKeyRow,
    query("list_model_prices"): PriceListed,
    query("insert_model_price"): PriceRow,
    query("find_gateway_keys"): KeyListed,
    query("credit_packages_on_sale"): PackageOnSale,
    query("list_credit_packages"): PackageListed,
    query("insert_credit_package"): PackageRow,
    query("current_subscription_of_user"): SubscriptionShown,
    query("live_subscription_of_user"): LiveSubscription,
    query("transactions_page_of_user"): TransactionRow,
    query("usage_page_of_user"): UsageRow,
    query("usage_by_day_of_user"): DayUsage,
    "SELECT * FROM create_ledger_user($1, $2, $3)": UserRow,
    "SELECT * FROM set_user_tier($1, $2, $3)": UserRow,
    "SELECT * FROM set_user_power_level($1, $2)": UserRow,
    edit_statement(CHANGE_PRICE, PRICE_FIELDS, 3): PriceRow,
    edit_statement(CHANGE_PACKAGE, PACKAGE_FIELDS, 2): PackageRow,
}


def python_modules() -> list[Path]:
    return sorted(p for top in ("ledger", "api") for p in (REPO / top).rglob("*.py"))


def imports_query(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "ledger.db.queries"
        and any(alias.name == "query" for alias in node.names)
        for node in ast.walk(tree)
    )


def names_used() -> dict[str, list[str]]:
    """query("name") calls in ledger/ and api/: name -> the modules calling it."""
    used: dict[str, list[str]] = {}
    for path in python_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if not imports_query(tree):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "query":
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                argument = node.args[0] if len(node.args) == 1 and not node.keywords else None
                assert isinstance(argument, ast.Constant) and isinstance(argument.value, str), (
                    f"{where}: query() takes one literal name, so the names can be checked"
                )
                used.setdefault(argument.value, []).append(where)
    return used


def sql_texts(path: Path) -> list[tuple[str, str, int]]:
    """String constants (and f-strings) of a module that read as SQL: (text, where defined, line),
    `where` being the enclosing function's or the module constant's name."""
    found = []

    def visit(node: ast.AST, owner: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = owner
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = child.name
            elif not owner and isinstance(child, ast.Assign) and isinstance(child.targets[0], ast.Name):
                name = child.targets[0].id
            if isinstance(child, ast.Constant) and isinstance(child.value, str):
                text = child.value
            elif isinstance(child, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in child.values)
            else:
                visit(child, name)
                continue
            if SQL_START.match(text):
                found.append((text, owner, child.lineno))

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


@pytest.fixture
async def conn(database_url):
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def test_every_named_query_prepares_against_the_migrated_schema(conn):
    refused = {}
    for name, text in all_queries().items():
        try:
            await conn.prepare(text)
        except asyncpg.PostgresError as exc:
            refused[name] = f"{type(exc).__name__}: {exc}"

    assert all_queries(), f"no queries in {queries_dir()}"
    assert not refused, f"named queries the schema refuses (a renamed column? two statements?): {refused}"


async def test_the_edits_prepare_with_every_changeable_column(conn):
    for template, fields, first in ((CHANGE_PRICE, PRICE_FIELDS, 3), (CHANGE_PACKAGE, PACKAGE_FIELDS, 2)):
        await conn.prepare(edit_statement(template, fields, first))


async def test_each_row_type_has_its_statements_columns_in_order(conn):
    mismatched = {}
    for text, row_type in ROW_TYPES.items():
        columns = [attribute.name for attribute in (await conn.prepare(text)).get_attributes()]
        if columns != list(row_type.__annotations__):
            mismatched[row_type.__name__] = {"statement": columns, "row type": list(row_type.__annotations__)}

    assert not mismatched, mismatched


def test_every_query_file_is_used_and_every_name_used_has_its_file():
    used = names_used()
    files = set(all_queries())

    assert not set(used) - files, {name: used[name] for name in set(used) - files}
    assert not files - set(used), f"query files no module loads (dead queries): {sorted(files - set(used))}"


def test_a_query_file_says_what_it_returns_first():
    for name, text in all_queries().items():
        assert re.match(r"--\s*\S", text), f"{name}.sql: the first line is a comment saying what it returns"


def test_an_unknown_name_is_a_clear_error():
    with pytest.raises(QueryError, match=r"no query 'no_such_query': there is no no_such_query\.sql in .*queries"):
        query("no_such_query")


def test_api_holds_no_sql():
    for path in sorted((REPO / "api").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not sql_texts(path), f"{path.relative_to(REPO)} holds SQL: call a wrapper in ledger/ instead"
        assert not imports_query(tree), f"{path.relative_to(REPO)} loads SQL: call a wrapper in ledger/ instead"


def test_sql_in_the_python_is_one_function_call_or_a_named_query():
    stray = []
    for path in sorted((REPO / "ledger").rglob("*.py")):
        relative = str(path.relative_to(REPO))
        for text, owner, line in sql_texts(path):
            if (relative, owner) not in NOT_MOVED and not ONE_CALL.match(text):
                stray.append(f"{relative}:{line} ({owner}): {text.strip()[:80]}")

    assert not stray, "SQL that is not one function call belongs in sql/queries/<name>.sql: " + "; ".join(stray)
