"""The migration runner: in order, once, concurrent-safe, refusing edited history."""

from __future__ import annotations

import asyncio
import difflib
import re
import shutil
from pathlib import Path

import asyncpg
import pytest

from ledger.db.migrations import MIGRATION_NAME, MigrationError, discover, migrate, migrations_dir, pending
from ledger.db.schema import dump_schema, schema_path

REPO = Path(__file__).resolve().parents[2]
DESIGN_TABLES = {
    "user_credits",
    "credit_transactions",
    "credit_packages",
    "power_level_configs",
    "user_provider_keys",
    "llm_usage_log",
    "model_prices",
    "gateway_api_keys",
    "subscription_tiers",
    "credit_holds",
    "schema_version",
}
SEED_INDEXES = {
    "idx_llm_usage_log_user_date",
    "idx_credit_transactions_user_date",
    "idx_user_credits_user_id",
    "idx_llm_usage_log_request_id",
    "idx_llm_usage_log_model",
    "idx_llm_usage_log_provider",
    "idx_llm_usage_log_success",
    "idx_credit_transactions_type",
}


@pytest.fixture
async def conn(empty_database_url):
    conn = await asyncpg.connect(empty_database_url)
    yield conn
    await conn.close()


def copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), target)
    return target


def test_migration_files_follow_one_naming_pattern():
    files = sorted(p.name for p in (REPO / "sql" / "migrations").iterdir())
    assert files, "no migrations found"
    assert all(MIGRATION_NAME.match(name) for name in files), files
    versions = [int(name[:4]) for name in files]
    assert versions == list(range(1, len(files) + 1)), "versions are consecutive from 0001"


async def test_all_migrations_on_an_empty_database_give_the_schema_the_tests_use(conn, database_url):
    applied = await migrate(conn)

    assert [m.version for m in applied] == [m.version for m in discover()]
    tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables >= DESIGN_TABLES
    indexes = {r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert indexes >= SEED_INDEXES
    recorded = await conn.fetch("SELECT version, checksum FROM schema_version ORDER BY version")
    assert [(r["version"], r["checksum"]) for r in recorded] == [(m.version, m.checksum) for m in discover()]

    template = await asyncpg.connect(database_url)
    try:
        schema_sql = """SELECT table_name, column_name, data_type, is_nullable, column_default
                          FROM information_schema.columns WHERE table_schema = 'public'
                         ORDER BY table_name, column_name"""
        functions_sql = """SELECT proname, pg_get_function_identity_arguments(oid) AS args FROM pg_proc
                            WHERE pronamespace = 'public'::regnamespace ORDER BY 1, 2"""
        assert [dict(r) for r in await conn.fetch(schema_sql)] == [dict(r) for r in await template.fetch(schema_sql)]
        assert [dict(r) for r in await conn.fetch(functions_sql)] == [
            dict(r) for r in await template.fetch(functions_sql)
        ]
    finally:
        await template.close()


async def test_all_migrations_on_an_empty_database_give_sql_schema_sql(conn, empty_database_url):
    """sql/schema.sql is what the migrations give, compared as pg_dump prints both, so a migration
    and the committed schema cannot drift apart (the test above compares the runner with itself)."""
    await migrate(conn)

    generated = await asyncio.to_thread(dump_schema, empty_database_url)

    assert "CREATE TABLE public.schema_version" in generated and "COPY " not in generated, "the table, not its rows"
    assert not re.search(r"Dumped (?:from|by)|\\(?:un)?restrict", generated), "nothing that differs between runs"
    committed = schema_path().read_text(encoding="utf-8")
    if generated != committed:
        diff = difflib.unified_diff(
            committed.splitlines(keepends=True),
            generated.splitlines(keepends=True),
            "sql/schema.sql (committed)",
            "the migrations applied to an empty database",
        )
        pytest.fail(
            "sql/schema.sql is not the schema the migrations give; run `ledger db schema` to regenerate it:\n"
            + "".join(diff)[:8000]
        )


async def test_the_seeded_catalogues_are_the_designs(conn):
    await migrate(conn)

    packages = await conn.fetch(
        "SELECT name, credits, price_usd, discount_percentage FROM credit_packages ORDER BY sort_order"
    )
    assert [(p["name"], int(p["credits"]), str(p["price_usd"]), int(p["discount_percentage"])) for p in packages] == [
        ("Starter Pack", 100, "10.00", 0),
        ("Value Pack", 500, "45.00", 10),
        ("Pro Pack", 1000, "80.00", 20),
        ("Enterprise Pack", 5000, "350.00", 30),
    ]
    levels = await conn.fetch(
        "SELECT power_level, cost_multiplier, max_latency_ms, quality_threshold, preferred_providers"
        " FROM power_level_configs ORDER BY cost_multiplier"
    )
    assert [
        (
            r["power_level"],
            str(r["cost_multiplier"]),
            r["max_latency_ms"],
            str(r["quality_threshold"]),
            r["preferred_providers"],
        )
        for r in levels
    ] == [
        ("eco", "0.700", 5000, "0.700", ["openrouter", "together", "deepinfra"]),
        ("balanced", "1.000", 3000, "0.850", ["openai", "anthropic", "openrouter"]),
        ("precision", "1.500", 2000, "0.950", ["anthropic", "openai"]),
    ]
    tiers = await conn.fetch("SELECT tier, price_usd, monthly_allowance FROM subscription_tiers ORDER BY price_usd")
    assert [(t["tier"], str(t["price_usd"]), t["monthly_allowance"]) for t in tiers] == [
        ("trial", "0.00", 100),
        ("starter", "19.00", 1000),
        ("professional", "49.00", 10000),
        ("enterprise", "99.00", None),
    ]
    gpt4 = await conn.fetchrow("SELECT * FROM model_prices WHERE provider = 'openai' AND model = 'gpt-4'")
    assert (gpt4["input_usd_per_mtok"], gpt4["output_usd_per_mtok"]) == (30, 60)
    assert await conn.fetchval("SELECT count(*) FROM model_prices WHERE provider <> 'demo'") == 12


async def test_a_second_run_is_a_no_op(conn):
    await migrate(conn)
    before = await conn.fetch("SELECT * FROM schema_version ORDER BY version")

    assert await migrate(conn) == []

    assert await conn.fetch("SELECT * FROM schema_version ORDER BY version") == before
    assert await pending(conn) == []


async def test_concurrent_runners_apply_each_migration_once(empty_database_url):
    conns = [await asyncpg.connect(empty_database_url) for _ in range(5)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
    finally:
        for c in conns:
            await c.close()

    applied = sorted(m.version for result in results for m in result)
    assert applied == [m.version for m in discover()]


async def test_a_migration_changed_after_it_was_applied_is_refused(conn, tmp_path):
    directory = copy_migrations(tmp_path)
    await migrate(conn, discover(directory))
    first = sorted(directory.iterdir())[0]
    first.write_text(first.read_text() + "\n-- an edit\n")

    with pytest.raises(MigrationError, match=rf"{first.name} changed after it was applied"):
        await migrate(conn, discover(directory))
    with pytest.raises(MigrationError):
        await pending(conn, discover(directory))


async def test_a_database_ahead_of_the_code_is_refused(conn, tmp_path):
    directory = copy_migrations(tmp_path)
    await migrate(conn, discover(directory))
    sorted(directory.iterdir())[-1].unlink()

    with pytest.raises(MigrationError, match="this code does not know"):
        await migrate(conn, discover(directory))


async def test_a_failing_migration_leaves_no_trace(conn, tmp_path):
    directory = copy_migrations(tmp_path)
    await migrate(conn, discover(directory))
    (directory / "9999_broken.sql").write_text("CREATE TABLE half_done (id int);\nSELECT 1/0;\n")

    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrate(conn, discover(directory))

    assert await conn.fetchval("SELECT to_regclass('half_done')") is None
    assert await conn.fetchval("SELECT count(*) FROM schema_version WHERE version = '9999'") == 0


def test_a_badly_named_file_is_refused(tmp_path):
    directory = copy_migrations(tmp_path)
    (directory / "5_Add-Things.sql").write_text("SELECT 1;")

    with pytest.raises(MigrationError, match="NNNN_lower_snake_case"):
        discover(directory)
