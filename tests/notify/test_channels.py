"""Channels at the library level: six digits cannot be guessed (the fifth wrong code spends it),
a new test message brings a new code, and a target is stored encrypted and shown as a hint."""

from __future__ import annotations

import base64
import os

from ledger.accounts.actor import OPERATOR, acting
from ledger.gateway.byok import KeyCipher
from ledger.notify import channels
from tests.accounts.helpers import make_team


async def test_the_fifth_wrong_code_spends_the_code_and_a_new_test_brings_a_new_one(pool):
    box = KeyCipher(base64.b64encode(os.urandom(32)).decode())
    team = await make_team(pool)
    target = "https://hooks.slack.com/services/T000/B000/SECRETSECRET"
    async with acting(pool, OPERATOR) as conn:
        made = await channels.create_channel(
            conn, box, team.workspace_id, "s", "slack", target, None, allow_private=True
        )
    row = await pool.fetchrow("SELECT * FROM notification_channels")
    assert target.encode() not in bytes(row["config_encrypted"]) and made.channel["target_hint"].endswith("…CRET")
    channel_id = made.channel["id"]

    async def code_sent() -> str:
        blob = await pool.fetchval("SELECT verification_code_encrypted FROM alert_notifications ORDER BY id DESC")
        code_text = channels.open_code(box, bytes(blob), channel_id)
        assert code_text.encode() not in bytes(blob)  # stored encrypted, not in clear
        return code_text

    async def verify(code: str) -> bool | None:
        async with acting(pool, OPERATOR) as conn:
            return await channels.verify(conn, box, team.workspace_id, channel_id, code, None)

    code = await code_sent()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert await verify(wrong) is False
    assert await verify(code) is False  # spent by the fifth wrong one
    audit = await pool.fetch("SELECT action, after FROM audit_logs WHERE action LIKE 'notification_channel%'")
    assert [r["action"] for r in audit].count("notification_channel.verify_failed") == 6
    assert all("verification_code" not in str(r["after"]) for r in audit)  # never the code, not even encrypted
    async with acting(pool, OPERATOR) as conn:
        assert await channels.resend_test(conn, box, team.workspace_id, channel_id, None)
    assert await verify(await code_sent()) is True
    assert (await channels.channel(pool, team.workspace_id, channel_id))["is_verified"]
    # a channel gets at most MOST_TESTS_A_DAY test messages a day, verified or not
    for _ in range(channels.MOST_TESTS_A_DAY - 2):
        async with acting(pool, OPERATOR) as conn:
            assert await channels.resend_test(conn, box, team.workspace_id, channel_id, None)
    async with acting(pool, OPERATOR) as conn:
        assert await channels.resend_test(conn, box, team.workspace_id, channel_id, None) is False


async def test_guesses_sent_at_once_are_each_counted(pool):
    import asyncio

    box = KeyCipher(base64.b64encode(os.urandom(32)).decode())
    team = await make_team(pool)
    async with acting(pool, OPERATOR) as conn:
        made = await channels.create_channel(
            conn, box, team.workspace_id, "m", "email", "ops@example.com", None, allow_private=True
        )
    blob = await pool.fetchval("SELECT verification_code_encrypted FROM alert_notifications")
    code = channels.open_code(box, bytes(blob), made.channel["id"])
    wrong = [f"{(int(code) + n) % 10**6:06d}" for n in range(1, 13)]

    async def guess(text: str) -> bool | None:
        async with acting(pool, OPERATOR) as conn:
            return await channels.verify(conn, box, team.workspace_id, made.channel["id"], text, None)

    assert await asyncio.gather(*(guess(w) for w in wrong)) == [False] * 12
    assert await pool.fetchval("SELECT verification_failures FROM notification_channels") == 12
    assert await guess(code) is False  # spent after the fifth
