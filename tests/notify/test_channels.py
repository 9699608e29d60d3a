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
    code = await pool.fetchval("SELECT verification_code FROM alert_notifications")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert await channels.verify(pool, team.workspace_id, made.channel["id"], wrong) is False
    assert await channels.verify(pool, team.workspace_id, made.channel["id"], code) is False  # spent
    assert await channels.resend_test(pool, team.workspace_id, made.channel["id"])
    fresh = await pool.fetchval("SELECT verification_code FROM alert_notifications ORDER BY id DESC LIMIT 1")
    assert await channels.verify(pool, team.workspace_id, made.channel["id"], fresh) is True
    assert (await channels.channel(pool, team.workspace_id, made.channel["id"]))["is_verified"]
