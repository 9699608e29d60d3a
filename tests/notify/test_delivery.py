"""The outbox and the delivery worker against a real database and real receivers: events exist
only for what committed, every attempt is logged, failures back off by the schedule and disable
an endpoint that keeps failing (its owners emailed), a claim that dies is tried again, and a
rotated secret signs beside the new one for its overlap."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import asyncpg
import httpx
import pytest

from ledger.accounts.actor import OPERATOR, acting
from ledger.accounts.mail import OutboxMailer
from ledger.db.queries import query
from ledger.gateway.byok import KeyCipher
from ledger.money import credits
from ledger.notify import delivery, emails, webhooks
from ledger.notify.delivery import DeliveryPolicy
from ledger.notify.schedule import RETRY_DELAYS
from ledger.notify.webhooks import WebhookSpec
from tests.accounts.helpers import make_team, outbox_messages
from tests.fake_receivers import WebhookReceiver

POLICY = DeliveryPolicy(allow_private=True, disable_after_failures=3, disable_after_seconds=0)


@pytest.fixture
def cipher() -> KeyCipher:
    return KeyCipher(base64.b64encode(os.urandom(32)).decode())


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    made = WebhookReceiver().start()
    yield made
    made.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as made:
        yield made


async def hook(
    pool: asyncpg.Pool,
    cipher: KeyCipher,
    workspace: uuid.UUID,
    receiver: WebhookReceiver,
    events: tuple[str, ...] = ("*",),
) -> webhooks.Created:
    async with acting(pool, OPERATOR) as conn:
        made = await webhooks.create_webhook(
            conn, cipher, workspace, WebhookSpec("ops", receiver.url, events), None, allow_private=True
        )
    receiver.secrets.append(made.secret)
    return made


async def purchase(pool: asyncpg.Pool, workspace: uuid.UUID, amount: str = "2") -> None:
    await credits.add_user_credits(pool, workspace, amount, "purchase", f"pi_{uuid.uuid4().hex}")


async def test_an_event_exists_only_when_its_cause_committed(pool, cipher, receiver):
    team = await make_team(pool)
    await hook(pool, cipher, team.workspace_id, receiver)
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await purchase(conn, team.workspace_id)
        assert await conn.fetchval("SELECT count(*) FROM webhook_messages") == 1  # same transaction
        await transaction.rollback()
    assert await pool.fetchval("SELECT count(*) FROM notification_events") == 0
    assert await pool.fetchval("SELECT count(*) FROM webhook_messages") == 0
    await purchase(pool, team.workspace_id)
    assert await pool.fetchval("SELECT count(*) FROM webhook_messages WHERE status = 'pending'") == 1


async def test_a_failing_endpoint_backs_off_is_logged_then_disabled_and_its_owners_emailed(
    pool, cipher, receiver, client, tmp_path
):
    team = await make_team(pool)
    made = await hook(pool, cipher, team.workspace_id, receiver)
    receiver.status = 500
    await purchase(pool, team.workspace_id)
    assert await delivery.deliver_due(pool, cipher, client, POLICY) == 1
    message = await pool.fetchrow("SELECT * FROM webhook_messages")
    # the next attempt waits the schedule's first delay, not the lease
    wait = message["next_attempt_at"] - (await pool.fetchval("SELECT now()"))
    assert RETRY_DELAYS[0] - timedelta(seconds=2) < wait <= RETRY_DELAYS[0]
    assert await delivery.deliver_due(pool, cipher, client, POLICY) == 0  # not due yet
    for _ in range(2):  # the clock moves on: each retry is due
        await pool.execute("UPDATE webhook_messages SET next_attempt_at = now()")
        await delivery.deliver_due(pool, cipher, client, POLICY)
    log = await pool.fetch("SELECT * FROM webhook_deliveries ORDER BY id")
    assert [row["attempt_number"] for row in log] == [1, 2, 3]
    assert all(row["response_status"] == 500 and not row["success"] for row in log)
    assert log[0]["response_body"] == "broken" and "webhook-signature" in log[0]["request_headers"]
    assert len(receiver.received) == 3 and all(r.verified_with for r in receiver.received)
    # one webhook-id for every attempt: the receiver can drop a redelivery
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    state = await pool.fetchrow("SELECT * FROM webhooks WHERE id = $1", made.webhook["id"])
    assert state["disabled_at"] is not None and state["consecutive_failures"] == 3
    assert "3 deliveries in a row failed" in state["disabled_reason"]
    # a disabled endpoint is not tried, however due its messages are
    await pool.execute("UPDATE webhook_messages SET next_attempt_at = now()")
    assert await delivery.deliver_due(pool, cipher, client, POLICY) == 0
    audit = await pool.fetchval("SELECT count(*) FROM audit_logs WHERE action = 'webhook.disabled'")
    assert audit == 1
    # its owners are emailed, once
    mailer = OutboxMailer(tmp_path / "out", "ledger@test")
    assert await emails.send_due(pool, mailer) == 1
    assert await emails.send_due(pool, mailer) == 0
    [mail] = outbox_messages(tmp_path / "out")
    assert "webhook ops disabled" in mail and team.emails["OWNER"] in mail and receiver.url in mail
    # enabled again: the waiting message goes out, and succeeds
    receiver.status = 204
    async with acting(pool, OPERATOR) as conn:
        await webhooks.modify_webhook(
            conn, team.workspace_id, made.webhook["id"], webhooks.WebhookChange(enabled=True), allow_private=True
        )
    assert await delivery.deliver_due(pool, cipher, client, POLICY) == 1
    assert await pool.fetchval("SELECT status FROM webhook_messages") == "delivered"
    assert await pool.fetchval("SELECT consecutive_failures FROM webhooks") == 0


async def test_the_schedule_ends_and_the_message_fails_for_good(pool, cipher, receiver, client):
    team = await make_team(pool)
    await hook(pool, cipher, team.workspace_id, receiver)
    receiver.status = 410
    await purchase(pool, team.workspace_id)
    patient = DeliveryPolicy(allow_private=True, disable_after_failures=1000, disable_after_seconds=0)
    for _ in range(len(RETRY_DELAYS) + 3):
        await pool.execute("UPDATE webhook_messages SET next_attempt_at = now() WHERE status = 'pending'")
        await delivery.deliver_due(pool, cipher, client, patient)
    assert await pool.fetchval("SELECT status FROM webhook_messages") == "failed"
    assert await pool.fetchval("SELECT count(*) FROM webhook_deliveries") == len(RETRY_DELAYS) + 1


async def test_a_claim_whose_process_died_is_tried_again_when_its_lease_ends(pool, cipher, receiver, client):
    team = await make_team(pool)
    await hook(pool, cipher, team.workspace_id, receiver)
    await purchase(pool, team.workspace_id)
    # a worker claims the message and dies before posting (nothing recorded)
    claimed = await pool.fetch("SELECT * FROM webhook_messages")
    assert len(await pool.fetch(query("claim_webhook_messages"), 10, 60)) == 1
    assert await delivery.deliver_due(pool, cipher, client, POLICY) == 0  # leased: nobody else sends it
    await pool.execute("UPDATE webhook_messages SET next_attempt_at = now()")  # the lease ran out
    assert await delivery.deliver_due(pool, cipher, client, POLICY) == 1
    assert len(receiver.received) == 1 and claimed[0]["status"] == "pending"
    assert await pool.fetchval("SELECT attempts FROM webhook_messages") == 2


async def test_a_rotated_secret_signs_beside_the_new_one_for_its_overlap(pool, cipher, receiver, client):
    team = await make_team(pool)
    made = await hook(pool, cipher, team.workspace_id, receiver)
    old = made.secret
    async with acting(pool, OPERATOR) as conn:
        new = await webhooks.rotate_secret(conn, cipher, team.workspace_id, made.webhook["id"], timedelta(hours=1))
    assert new is not None and new != old
    receiver.secrets = [old, new]
    await purchase(pool, team.workspace_id)
    await delivery.deliver_due(pool, cipher, client, POLICY)
    assert receiver.received[-1].verified_with == [old, new]
    async with acting(pool, OPERATOR) as conn:
        newest = await webhooks.rotate_secret(conn, cipher, team.workspace_id, made.webhook["id"], timedelta(0))
    receiver.secrets = [old, new, newest]
    await purchase(pool, team.workspace_id)
    await delivery.deliver_due(pool, cipher, client, POLICY)
    assert receiver.received[-1].verified_with == [newest]
    audit = await pool.fetch("SELECT after FROM audit_logs WHERE resource_type = 'webhook' ORDER BY id")
    assert len(audit) == 3 and all(
        "secret" not in str(row["after"]).replace("previous_secret_expires_at", "") for row in audit
    )


async def test_an_endpoint_resolving_to_a_private_address_is_refused_at_each_attempt(pool, cipher, receiver, client):
    team = await make_team(pool)
    await hook(pool, cipher, team.workspace_id, receiver)
    await purchase(pool, team.workspace_id)
    strict = DeliveryPolicy(allow_private=False, disable_after_failures=100, disable_after_seconds=0)
    await delivery.deliver_due(pool, cipher, client, strict)
    assert receiver.received == []
    row = await pool.fetchrow("SELECT * FROM webhook_deliveries")
    assert not row["success"] and "private, loopback or link-local" in row["error_message"]


async def test_a_secret_no_key_opens_is_logged_not_sent(pool, cipher, receiver, client):
    team = await make_team(pool)
    await hook(pool, cipher, team.workspace_id, receiver)
    await purchase(pool, team.workspace_id)
    other = KeyCipher(base64.b64encode(os.urandom(32)).decode())
    await delivery.deliver_due(pool, other, client, POLICY)
    assert receiver.received == []
    assert "not sent" in await pool.fetchval("SELECT error_message FROM webhook_deliveries")


async def test_rotating_the_encryption_key_re_encrypts_webhook_secrets_and_channel_targets_once(
    pool, receiver, client, database_url
):
    from ledger.notify import channels
    from tests.api.test_key_rotation import rotate

    old, new = base64.b64encode(os.urandom(32)).decode(), base64.b64encode(os.urandom(32)).decode()
    team = await make_team(pool)
    made = await hook(pool, KeyCipher(old), team.workspace_id, receiver)
    async with acting(pool, OPERATOR) as conn:
        await channels.create_channel(
            conn, KeyCipher(old), team.workspace_id, "mail", "email", "ops@example.com", None, allow_private=True
        )
    before = await pool.fetchrow("SELECT secret_encrypted FROM webhooks")
    done = rotate(database_url, new, old)
    assert done.returncode == 0, done.stderr
    assert '"webhook_secrets_rotated": 1' in done.stdout and '"channel_targets_rotated": 1' in done.stdout
    assert old not in done.stdout + done.stderr and made.secret not in done.stdout + done.stderr
    assert await pool.fetchval("SELECT secret_encrypted FROM webhooks") != before["secret_encrypted"]
    again = rotate(database_url, new, old)
    assert '"webhook_secrets_current": 1' in again.stdout and '"channel_targets_current": 1' in again.stdout
    # the new key alone signs: the receiver still verifies
    await purchase(pool, team.workspace_id)
    await delivery.deliver_due(pool, KeyCipher(new), client, POLICY)
    assert receiver.received[-1].verified_with == [made.secret]


async def test_an_email_the_mail_server_refuses_is_retried_not_lost(pool, tmp_path):
    from ledger.accounts.mail import SmtpMailer
    from tests.fake_upstream import free_port

    team = await make_team(pool)
    await pool.execute("UPDATE user_credits SET low_balance_threshold = 1000 WHERE user_id = $1", team.workspace_id)
    await purchase(pool, team.workspace_id)  # no crossing: a purchase raises the balance
    await pool.execute(
        'SELECT ledger_emit($1, \'balance.low\', \'{"spendable": "1", "threshold": "1000"}\'::jsonb)',
        team.workspace_id,
    )
    closed = SmtpMailer(f"smtp://127.0.0.1:{free_port()}", "ledger@test")  # nothing listens there
    assert await emails.send_due(pool, closed) == 1
    row = await pool.fetchrow("SELECT * FROM notification_emails")
    assert row["status"] == "pending" and row["attempts"] == 1 and "did not take the message" in row["last_error"]
    assert await emails.send_due(pool, closed) == 0  # not due before its back-off
    await pool.execute("UPDATE notification_emails SET next_attempt_at = now()")
    assert await emails.send_due(pool, OutboxMailer(tmp_path / "out", "ledger@test")) == 1
    assert await pool.fetchval("SELECT status FROM notification_emails") == "sent"


async def test_a_message_older_than_three_days_is_failed_not_sent_when_its_endpoint_comes_back(
    pool, cipher, receiver, client
):
    team = await make_team(pool)
    await hook(pool, cipher, team.workspace_id, receiver)
    await purchase(pool, team.workspace_id)
    await pool.execute("UPDATE webhook_messages SET created_at = now() - interval '3 days 1 minute'")
    assert await delivery.deliver_due(pool, cipher, client, POLICY) == 1
    assert receiver.received == []
    assert await pool.fetchval("SELECT status FROM webhook_messages") == "failed"
    assert "three days" in await pool.fetchval("SELECT error_message FROM webhook_deliveries")
