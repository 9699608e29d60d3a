"""Rotating LEDGER_ENCRYPTION_KEY (issue 17, item 9). After the key changed, every request of a
user holding a BYOK key was a 500, for any provider. Now a key that decrypts under no configured
key is skipped (the platform's key serves) and shown to its owner as needing re-entry; the old
key kept in LEDGER_ENCRYPTION_KEYS_OLD keeps it readable until `ledger byok rotate` re-encrypts
every stored key under the new one, once."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.gateway import byok
from tests.api.test_provider_keys import BYOK_KEY, MESSAGES, add_key

LEDGER = str(Path(sys.executable).parent / "ledger")


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def rotate(database_url: str, current: str, old: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_DATABASE_URL=database_url, LEDGER_ENCRYPTION_KEY=current)
    if old is not None:
        env["LEDGER_ENCRYPTION_KEYS_OLD"] = old
    return subprocess.run([LEDGER, "byok", "rotate", "--json"], env=env, capture_output=True, text=True, timeout=120)


async def test_a_key_that_no_longer_decrypts_is_skipped_and_shown_as_needing_reentry(
    pool, upstreams, start_service, make_account
):
    first = new_key()
    before = start_service(upstreams, encryption_key=first)
    account = await make_account(credits_="10")
    assert add_key(before, account).status_code == 201

    after = start_service(upstreams, encryption_key=new_key())  # the key changed, the old one dropped
    reply = after.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)
    listed = after.get("/v1/provider-keys", account.key).json()["data"]

    assert reply.choices[0].message.content
    # served with the platform's key, charged as a platform request
    assert upstreams["openai"].requests[-1]["headers"]["authorization"] == "Bearer sk-platform-openai"
    assert not await pool.fetchval("SELECT is_byok FROM llm_usage_log WHERE user_id = $1", account.user_id)
    assert [k["status"] for k in listed] == ["needs_reentry"]
    assert BYOK_KEY not in str(listed)


async def test_old_and_new_keys_both_read_during_rotation_and_rotate_re_encrypts_each_key_once(
    pool, upstreams, start_service, make_account, database_url
):
    old, new = new_key(), new_key()
    account = await make_account(credits_="10")
    assert add_key(start_service(upstreams, encryption_key=old), account).status_code == 201
    stored = await pool.fetchval("SELECT encrypted_key FROM user_provider_keys WHERE user_id = $1", account.user_id)

    during = start_service(upstreams, encryption_key=new, encryption_keys_old=old)
    during.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)
    assert upstreams["openai"].requests[-1]["headers"]["authorization"] == f"Bearer {BYOK_KEY}"
    assert [k["status"] for k in during.get("/v1/provider-keys", account.key).json()["data"]] == ["active"]

    done = rotate(database_url, new, old)
    assert done.returncode == 0, done.stderr
    assert '"rotated": 1' in done.stdout and '"unreadable": 0' in done.stdout
    assert old not in done.stdout + done.stderr and new not in done.stdout + done.stderr
    rotated = await pool.fetchval("SELECT encrypted_key FROM user_provider_keys WHERE user_id = $1", account.user_id)
    assert rotated != stored

    again = rotate(database_url, new, old)
    assert '"rotated": 0' in again.stdout and '"current": 1' in again.stdout
    assert await pool.fetchval("SELECT encrypted_key FROM user_provider_keys WHERE user_id = $1", account.user_id) == (
        rotated
    )

    only_new = start_service(upstreams, encryption_key=new)  # the old key dropped after the rotation
    only_new.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)
    assert upstreams["openai"].requests[-1]["headers"]["authorization"] == f"Bearer {BYOK_KEY}"


def test_rotate_without_an_encryption_key_says_so(database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_DATABASE_URL"] = database_url
    done = subprocess.run([LEDGER, "byok", "rotate"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "LEDGER_ENCRYPTION_KEY is not set" in done.stderr


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plain=st.from_regex(r"[\x21-\x7e]{1,80}", fullmatch=True),
    olds=st.integers(min_value=0, max_value=3),
    stored_under=st.integers(min_value=0, max_value=4),
)
def test_the_cipher_reads_under_any_configured_key_and_encrypts_under_the_current(plain, olds, stored_under):
    keys = [new_key() for _ in range(5)]
    current, old = keys[0], keys[1 : 1 + olds]
    cipher = byok.KeyCipher(current, old)
    owner = __import__("uuid").uuid4()
    blob = byok.KeyCipher(keys[stored_under]).encrypt(plain, owner, "openai")

    if stored_under <= olds:
        assert cipher.open(blob, owner, "openai") == (plain, stored_under == 0)
        again = cipher.encrypt(plain, owner, "openai")
        assert byok.KeyCipher(current).decrypt(again, owner, "openai") == plain
    else:
        with pytest.raises(ValueError, match="does not decrypt"):
            cipher.decrypt(blob, owner, "openai")
        assert not cipher.readable(blob, owner, "openai")
    # bound to its owner and provider, whichever key
    assert not cipher.readable(blob, owner, "anthropic")
