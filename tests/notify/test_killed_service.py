"""Nothing is lost when the service is killed between a settle and its delivery: the event was
committed with the settle, and the next process to run the worker delivers it."""

from __future__ import annotations

import base64
import os
import signal
import time

import openai

from ledger.accounts.actor import OPERATOR, acting
from ledger.gateway import keys as gateway_keys
from ledger.gateway.byok import KeyCipher
from ledger.notify import webhooks
from ledger.notify.webhooks import WebhookSpec
from tests.accounts.helpers import make_team
from tests.fake_receivers import WebhookReceiver
from tests.service import running_service, service_process


async def test_a_settle_whose_process_was_killed_is_delivered_by_the_next_one(pool, database_url, tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    receiver = WebhookReceiver().start()
    try:
        team = await make_team(pool, credits_="10")
        async with acting(pool, OPERATOR) as conn:
            made = await webhooks.create_webhook(
                conn,
                KeyCipher(key),
                team.workspace_id,
                WebhookSpec("ops", receiver.url, ["request.completed"]),
                None,
                allow_private=True,
            )
            project = await conn.fetchval("SELECT id FROM projects WHERE workspace_id = $1", team.workspace_id)
        receiver.secrets.append(made.secret)
        gateway_key = await gateway_keys.create_key(pool, team.workspace_id, "k", project_id=project)
        env = {
            "LEDGER_DATABASE_URL": database_url,
            "LEDGER_ENCRYPTION_KEY": key,
            "LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "LEDGER_MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        }
        # the first process settles and dies before its worker runs (off here, so it surely never does)
        with service_process({**env, "LEDGER_NOTIFY_INTERVAL_SECONDS": "0"}) as (url, process):
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=gateway_key.key, max_retries=0)
            answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        request_id = await pool.fetchval("SELECT request_id FROM llm_usage_log WHERE success")
        assert await pool.fetchval("SELECT status FROM webhook_messages") == "pending"
        assert receiver.received == []
        # the next process delivers it
        with running_service({**env, "LEDGER_NOTIFY_INTERVAL_SECONDS": "0.05"}):
            [got] = receiver.wait_for("request.completed")
            for _ in range(400):  # the attempt is recorded once the receiver's answer came back
                if await pool.fetchval("SELECT status FROM webhook_messages") == "delivered":
                    break
                time.sleep(0.05)
        assert got.verified_with == [made.secret]
        assert got.payload["data"]["request_id"] == request_id and answer.id
        assert await pool.fetchval("SELECT status FROM webhook_messages") == "delivered"
    finally:
        receiver.stop()
