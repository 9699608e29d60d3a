"""The primary's postmaster is SIGKILLed under load; pg_auto_failover promotes its synchronous
standby, and the service, reaching the pair through the multi-host URL with
target_session_attrs=read-write, carries on by itself.

Checked afterwards, on the new primary: every request answered 200 has its usage row and its
charge; every answer that was not a 200 is a 503 with Retry-After in its API's error shape (never
a 500); every Stripe webhook answered 2xx is credited, those answered 503 are credited once when
redelivered; the holds of requests cut by the failover are settled or expire by their TTL and give
their credits back; the books reconcile; the same service process answers again.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ledger.gateway import keys as gateway_keys
from ledger.money import accounts, credits
from tests.fake_anthropic import FakeAnthropic
from tests.fake_stripe import WEBHOOK_SECRET, FakeStripe, event
from tests.fake_upstream import FakeUpstream, ServerThread
from tests.ha.formation import Formation, formation
from tests.ha.load import Answer, Load
from tests.service import LEDGER, service_process

# named on pytest's command line outside scripts/test-ha (which installs pg_auto_failover)
pytestmark = pytest.mark.skipif(os.environ.get("LEDGER_TEST_HA") != "1", reason="run by scripts/test-ha")

HOLD_TTL_SECONDS = 20  # a hold the failover cut expires this soon (the default is 900)
WARM_UP_SECONDS = 3.0  # of load before the kill
AFTER_RECOVERY_SECONDS = 6.0  # of load after the first 200 that follows the kill
RECOVERY_DEADLINE_SECONDS = 90.0
STARTING_CREDITS = Decimal(1000)
PACKAGE = "Value Pack"  # 500 credits
WEBHOOKS = 60
WEBHOOK_INTERVAL = 0.2
SUCCESS = {"success_url": "https://app.example/ok", "cancel_url": "https://app.example/cancel"}
# (api, streamed) of each load client
CLIENTS = [("openai", False)] * 3 + [("openai", True)] + [("anthropic", False)] * 3 + [("anthropic", True)]


@pytest.fixture
def pair() -> Iterator[Formation]:
    with formation() as running:
        yield running


@pytest.fixture
def fakes() -> Iterator[tuple[FakeUpstream, FakeAnthropic, FakeStripe]]:
    # a little latency upstream, so that requests are in flight (holding credits) at the kill
    upstream = FakeUpstream("openai", delay=0.05, usage=(12, 8))
    upstream.server = ServerThread(upstream.app()).start()
    claude = FakeAnthropic(delay=0.05, input_tokens=12, output_tokens=8).start()
    stripe = FakeStripe()
    stripe_server = ServerThread(stripe.app()).start()
    stripe.api_base = stripe_server.url
    yield upstream, claude, stripe
    for server in (upstream.server, claude.server, stripe_server):
        assert server is not None
        server.stop()


def service_env(url: str, upstream: FakeUpstream, claude: FakeAnthropic, stripe: FakeStripe, data: Path) -> dict:
    providers = {
        "openai": {"base_url": upstream.base_url, "api_key": "sk-platform-openai", "api": "openai", "timeout_s": 10},
        "anthropic": {"base_url": claude.base_url, "api_key": "sk-ant", "api": "anthropic", "timeout_s": 10},
    }
    return {
        "LEDGER_DATABASE_URL": url,
        "LEDGER_MIGRATE_ON_START": "false",
        "LEDGER_DATA_DIR": str(data),
        "LEDGER_PROVIDERS": json.dumps(providers),
        "LEDGER_STRIPE_SECRET_KEY": stripe.secret_key,
        "LEDGER_STRIPE_API_BASE": stripe.api_base,
        "LEDGER_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "LEDGER_HOLD_TTL_SECONDS": str(HOLD_TTL_SECONDS),
        "LEDGER_MAINTENANCE_INTERVAL_SECONDS": "1",
        "LEDGER_DB_COMMAND_TIMEOUT_SECONDS": "10",
    }


async def make_users(url: str, count: int) -> list[tuple[uuid.UUID, str]]:
    """Users with starting credits (no allowance) and a gateway key each, made through the
    multi-host URL."""
    conn = await asyncpg.connect(url)
    try:
        made = []
        for _ in range(count):
            user = await accounts.create_user(conn, None, "trial", "balanced")
            # no monthly allowance: every charge comes out of the balance
            await conn.execute("UPDATE user_credits SET monthly_allowance = 0 WHERE user_id = $1", user["user_id"])
            await credits.add_user_credits(conn, user["user_id"], STARTING_CREDITS, "bonus", None, "starting credits")
            key = await gateway_keys.create_key(conn, user["user_id"], "ha test")
            made.append((user["user_id"], key.key))
        return made
    finally:
        await conn.close()


def checkout_events(base_url: str, key: str, stripe: FakeStripe, conn_url: str, count: int) -> list[dict]:
    """`count` checkouts of the package, each paid: the checkout.session.completed Stripe would send."""
    package_id = asyncio.run(_fetchval(conn_url, "SELECT id FROM credit_packages WHERE name = $1", PACKAGE))
    events = []
    with httpx.Client(timeout=30) as http:
        for _ in range(count):
            response = http.post(
                f"{base_url}/v1/credits/checkout",
                headers={"Authorization": f"Bearer {key}"},
                json={"package_id": str(package_id), **SUCCESS},
            )
            assert response.status_code == 201, response.text
            session = stripe.sessions[response.json()["id"]]
            paid = {
                **session,
                "status": "complete",
                "payment_status": "paid",
                "payment_intent": f"pi_{uuid.uuid4().hex}",
            }
            events.append(event("checkout.session.completed", paid))
    return events


async def _fetchval(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def assert_unavailable_in_its_shape(answer: Answer) -> None:
    """A 503 with Retry-After, in the error shape of the API the client speaks."""
    where = (answer.api, answer.status, answer.body, answer.error)
    assert answer.status == 503, where
    assert answer.headers.get("retry-after", "").isdigit(), where
    body = answer.body
    if answer.api == "anthropic":
        assert isinstance(body, dict) and body.get("type") == "error", where
        assert body["error"]["type"] == "overloaded_error" and body["error"]["message"], where
    else:
        assert isinstance(body, dict) and set(body) == {"error"}, where
        assert body["error"]["type"] == "service_unavailable", where
        assert body["error"]["code"] == "database_unavailable" and body["error"]["message"], where


def first_200_after(answers: list[Answer], moment: float) -> Answer | None:
    after = [a for a in answers if a.status == 200 and a.started >= moment]
    return min(after, key=lambda a: a.ended, default=None)


# What losing the primary raises (asyncpg's names), and the background loops (maintenance,
# notifications, auto top-up) that log such a failure with its traceback and run again
OUTAGE_EXCEPTIONS = re.compile(
    r"^(asyncpg\.exceptions\.(\w+\.)?(ConnectionDoesNotExistError|CannotConnectNowError|AdminShutdownError"
    r"|TargetServerAttributeNotMatched|ReadOnlySQLTransactionError)|ConnectionRefusedError|ConnectionResetError"
    r"|(builtins\.)?TimeoutError"
    r"|asyncpg\.exceptions\._base\.InternalClientError: cannot switch to state \d+; another operation \(2\)"
    r"|asyncpg\.exceptions\._base\.InterfaceError: .*connection (is|was) closed)\b"
)
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|NotMatched)\b")
RETRYING_LOOPS = re.compile(r"^[\w -]+ (pass|run) failed; retrying in [\d.]+ s$")


async def watch(pair: Formation, *, promoted: str, rejoined: str) -> tuple[float, float]:
    """When (monotonic) the monitor first showed `promoted` as the primary (wait_primary while
    alone), then `rejoined` as its secondary."""
    promoted_at = None
    while True:
        roles = await asyncio.to_thread(pair.roles)
        now = time.monotonic()
        if promoted_at is None and roles.get(promoted) in ("wait_primary", "primary"):
            promoted_at = now
        if promoted_at is not None and roles.get(rejoined) == "secondary" and roles.get(promoted) == "primary":
            return promoted_at, now
        await asyncio.sleep(0.2)


def service_log_problems(log: Path) -> list[str]:
    """Lines of the service's log that tell of a bug: a traceback outside a JSON record, a 500
    answered, an error logged other than a background loop's run that failed on the outage."""
    problems = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            if "Traceback" in line or "Error" in line:
                problems.append(line)
            continue
        if record.get("status") == 500:
            problems.append(line)
        elif record.get("level") in ("error", "critical"):
            # the exception's own line: the last one naming a class (its message may go on: DETAIL...)
            raised = [ln for ln in (record.get("exception") or "").splitlines() if EXCEPTION_LINE.match(ln)][-1:]
            if not (RETRYING_LOOPS.match(record["message"]) and raised and OUTAGE_EXCEPTIONS.match(raised[0])):
                problems.append(line)
    return problems


async def test_the_service_rides_out_a_failover_of_its_database(
    pair: Formation, fakes: tuple[FakeUpstream, FakeAnthropic, FakeStripe], tmp_path: Path, capsys
) -> None:
    upstream, claude, stripe = fakes
    old = pair.primary()
    assert old is not None
    standby = next(node for node in pair.nodes if node is not old)
    url = pair.uri()
    assert "target_session_attrs=read-write" in url and str(old.port) in url and str(standby.port) in url
    # synchronous replication: a commit the service was told of is on the standby too
    assert pair.psql(old.port, "SHOW synchronous_standby_names").startswith("ANY 1 (")
    assert pair.psql(old.port, "SHOW synchronous_commit") == "on"
    assert pair.psql(old.port, "SELECT sync_state FROM pg_stat_replication") in ("quorum", "sync")

    env = service_env(url, upstream, claude, stripe, tmp_path / "data")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    migrated = subprocess.run([LEDGER, "migrate"], env={**clean, **env}, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    users = await make_users(url, len(CLIENTS) + 1)
    *metered, (buyer, buyer_key) = users
    log = tmp_path / "service.log"

    with service_process(env, log=log) as (base_url, process):
        events = await asyncio.to_thread(checkout_events, base_url, buyer_key, stripe, url, WEBHOOKS)
        load = Load(base_url)
        tasks = [
            asyncio.create_task(
                load.openai_client(str(user_id), key, stream=stream)
                if api == "openai"
                else load.anthropic_client(str(user_id), key, stream=stream)
            )
            for (api, stream), (user_id, key) in zip(CLIENTS, metered, strict=True)
        ]
        tasks.append(asyncio.create_task(load.stripe(events, WEBHOOK_INTERVAL)))
        await asyncio.sleep(WARM_UP_SECONDS)
        assert {a.api for a in load.answers if a.status == 200} == {"openai", "anthropic", "stripe"}, load.answers[:5]

        victim = old.postmaster_pid()
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        seen = asyncio.create_task(watch(pair, promoted=standby.name, rejoined=old.name))

        # load goes on until both APIs answer 200 again, then a while longer
        while not all(first_200_after(load.of(api), killed_at) for api in ("openai", "anthropic")):
            assert time.monotonic() - killed_at < RECOVERY_DEADLINE_SECONDS, (
                f"no 200 since the kill; formation {pair.roles()}; log tail: {log.read_text()[-3000:]}"
            )
            await asyncio.sleep(0.1)
        recovered = first_200_after(load.of("openai", "anthropic"), killed_at)
        assert recovered is not None
        failover_seconds = recovered.ended - killed_at
        await asyncio.sleep(AFTER_RECOVERY_SECONDS)
        load.stop.set()
        await asyncio.gather(*tasks)

        # pg_auto_failover promoted the standby; the old primary's keeper restarted its PostgreSQL
        # as the new standby (pg_rewind), back to a synchronous pair
        try:
            promoted_at, rejoined_at = await asyncio.wait_for(seen, RECOVERY_DEADLINE_SECONDS)
        except TimeoutError:
            raise AssertionError(f"no failover, or no rejoin: {pair.state()}\n{pair.log_tails()}") from None
        assert pair.primary() is standby, pair.state()

        # Stripe redelivers what was not answered 2xx, as it would (with backoff, for days)
        delivered: dict[str, list[Answer]] = {}
        for answer in load.of("stripe"):
            delivered.setdefault(answer.user, []).append(answer)
        sent = [e for e in events if e["id"] in delivered]
        redelivered = 0
        async with httpx.AsyncClient(timeout=30) as http:
            for stripe_event in sent:
                if not any(a.status is not None and 200 <= a.status < 300 for a in delivered[stripe_event["id"]]):
                    redelivered += 1
                    again = await load.deliver(http, stripe_event)
                    assert again.status == 200 and again.body["status"] in ("processed", "duplicate"), again

        # the same process, never restarted, answers from the new primary
        assert process.poll() is None
        async with httpx.AsyncClient(timeout=30) as http:
            assert (await http.get(f"{base_url}/healthz")).status_code == 200
            ready = await http.get(f"{base_url}/readyz")
            assert ready.status_code == 200, ready.text
        after = Load(base_url)
        after.stop.set()  # one request of each client
        user_id, key = metered[0]
        await after.openai_client(str(user_id), key, stream=False)
        await after.anthropic_client(str(user_id), key, stream=False)

        # every hold ends, while the service runs its maintenance: settled (by its request, or by
        # the settle retried in the background), released, or expired by its TTL (the hold of a
        # request the failover cut after its hold was committed)
        deadline = time.monotonic() + HOLD_TTL_SECONDS + 30
        while held := await _fetchval(standby.url, "SELECT count(*) FROM credit_holds WHERE status = 'held'"):
            assert time.monotonic() < deadline, f"{held} holds still held past their TTL"
            await asyncio.sleep(0.5)

    metered_answers = load.of("openai", "anthropic")
    ok = [a for a in metered_answers + after.of("openai", "anthropic") if a.status == 200]
    refused = [a for a in metered_answers if a.status != 200]

    # answers: 200, or a 503 with Retry-After in the API's own shape; the outage was felt
    assert [a.error for a in load.answers if a.status is None] == []
    for answer in refused + [a for a in load.of("stripe") if a.status != 200]:
        assert_unavailable_in_its_shape(answer)
    assert refused, "no request was refused: the kill did not reach the service"
    assert [a.status for a in after.answers] == [200, 200], after.answers
    problems = service_log_problems(log)
    assert problems == [], "\n".join(problems[:20])

    new = await asyncpg.connect(standby.url)  # the new primary itself, not through the URL
    try:
        assert await new.fetchval("SELECT pg_is_in_recovery()") is False
        assert await new.fetchval("SELECT count(*) FROM credit_holds WHERE status = 'held'") == 0

        rows = {
            r["request_id"]: r
            for r in await new.fetch(
                """SELECT u.request_id, u.success, u.credits_used, u.usage_anomaly, h.status AS hold_status,
                          t.amount, t.allowance_used, t.transaction_type
                     FROM llm_usage_log u
                     LEFT JOIN credit_holds h USING (hold_id)
                     LEFT JOIN credit_transactions t ON t.id = u.transaction_id"""
            )
        }
        # every 200: its usage row, settled, and its charge in the books, as its headers said
        for answer in ok:
            row = rows.get(answer.request_id)
            assert row is not None, f"no usage row for {answer.request_id} answered 200"
            assert row["success"] and row["hold_status"] == "settled" and row["transaction_type"] == "usage", dict(row)
            charged = -row["amount"] + row["allowance_used"]
            assert answer.charged is not None, answer
            assert charged == row["credits_used"] == Decimal(answer.charged) > 0, dict(row)
        # and nothing else was charged: a request refused with a 503 cost nothing
        charged_ids = {rid for rid, r in rows.items() if r["transaction_type"] == "usage"}
        assert charged_ids == {a.request_id for a in ok}
        # a hold the failover cut (committed, its request answered 503) expired and wrote its failed row
        expired = await new.fetch("SELECT request_id, user_id FROM credit_holds WHERE status = 'expired'")
        refused_ids = {a.request_id for a in refused}
        for hold in expired:
            assert hold["request_id"] in refused_ids, dict(hold)
            row = rows[hold["request_id"]]
            assert not row["success"] and row["usage_anomaly"] == "hold_expired_unsettled", dict(row)
        # each user's credits: the starting ones less exactly what their 200s were charged, none held
        spent = Counter[str]()
        for answer in ok:
            spent[answer.user] += Decimal(answer.charged or "NaN")
        for user_id, _ in metered:
            wallet = await new.fetchrow("SELECT balance, credits_held FROM user_credits WHERE user_id = $1", user_id)
            assert wallet["credits_held"] == 0
            assert wallet["balance"] == STARTING_CREDITS - spent[str(user_id)], (user_id, dict(wallet))

        # Stripe: every payment delivered is credited exactly once
        intents = [e["data"]["object"]["payment_intent"] for e in sent]
        purchases = "SELECT payment_intent_id FROM credit_transactions WHERE transaction_type = 'purchase'"
        assert Counter(r["payment_intent_id"] for r in await new.fetch(purchases)) == Counter(intents)
        bought_credits = await new.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", buyer)
        assert bought_credits == STARTING_CREDITS + 500 * len(sent)
        assert [dict(r) for r in await new.fetch("SELECT * FROM ledger_reconciliation")] == []
    finally:
        await new.close()

    with capsys.disabled():
        statuses = Counter(a.status for a in load.answers)
        print(
            f"\nfailover: first 200 {failover_seconds:.1f} s after the SIGKILL of the primary's postmaster"
            f" ({old.name} -> {standby.name}); promoted after {promoted_at - killed_at:.1f} s;"
            f" old primary back as standby after {rejoined_at - killed_at:.1f} s;"
            f" answers {dict(statuses)}; webhooks redelivered {redelivered}/{len(sent)};"
            f" answered with a settle pending {sum(a.headers.get('x-credits-remaining') == 'pending' for a in ok)};"
            f" holds expired {len(expired)}"
        )
