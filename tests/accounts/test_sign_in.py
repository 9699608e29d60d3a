"""Sign-in against hostile input: alike for an unknown email and a wrong password, lockout after
repeated failures, one-time tokens, TOTP codes used once."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pyotp
import pytest

from ledger.accounts import people, sessions
from ledger.accounts.actor import OPERATOR, acting
from ledger.accounts.tokens import token_hash
from ledger.gateway.byok import KeyCipher
from tests.accounts.helpers import PASSWORD, make_person

CIPHER = KeyCipher("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")


async def attempt(pool, email: str, password: str) -> people.SignedIn | str:
    async with acting(pool, OPERATOR) as conn:
        signed = await people.sign_in(conn, email, password, "203.0.113.9")
    return people.SIGN_IN_FAILED if signed is None else signed


async def test_an_unknown_email_and_a_wrong_password_are_answered_alike_in_about_the_same_time(pool):
    _, email = await make_person(pool)

    async def timed(address: str, password: str) -> tuple[object, float]:
        start = time.perf_counter()
        answer = await attempt(pool, address, password)
        return answer, time.perf_counter() - start

    unknown = [await timed("nobody@example.com", "whatever-password") for _ in range(3)]
    wrong = [await timed(email, "not-the-password") for _ in range(3)]
    assert {answer for answer, _ in unknown} == {answer for answer, _ in wrong} == {people.SIGN_IN_FAILED}
    # both spend one argon2 verification: neither is a fraction of the other
    slow_unknown, slow_wrong = sorted(t for _, t in unknown)[1], sorted(t for _, t in wrong)[1]
    assert 0.3 < slow_unknown / slow_wrong < 3.0, (slow_unknown, slow_wrong)


async def test_five_failures_lock_the_person_out_even_with_the_right_password(pool):
    person_id, email = await make_person(pool)
    for _ in range(people.MAX_FAILED_SIGN_INS):
        assert await attempt(pool, email, "wrong password!") == people.SIGN_IN_FAILED
    assert await attempt(pool, email.upper(), PASSWORD) == people.SIGN_IN_FAILED  # locked, and told alike
    assert await pool.fetchval("SELECT locked_until > now() FROM users WHERE id = $1", person_id)
    failed = await pool.fetchval(
        "SELECT count(*) FROM audit_logs WHERE person_id = $1 AND action = 'login.failed'", person_id
    )
    assert failed == people.MAX_FAILED_SIGN_INS + 1
    await pool.execute("UPDATE users SET locked_until = now() - interval '1 second' WHERE id = $1", person_id)
    signed = await attempt(pool, email, PASSWORD)
    assert isinstance(signed, people.SignedIn) and signed.person_id == person_id
    row = await pool.fetchrow("SELECT last_login_ip, failed_login_attempts FROM users WHERE id = $1", person_id)
    assert (str(row["last_login_ip"]), row["failed_login_attempts"]) == ("203.0.113.9", 0)


async def test_concurrent_wrong_passwords_are_each_counted(pool):
    import asyncio

    person_id, email = await make_person(pool)
    await asyncio.gather(*(attempt(pool, email, f"wrong password {n}") for n in range(4)))
    assert await pool.fetchval("SELECT failed_login_attempts FROM users WHERE id = $1", person_id) == 4


async def test_a_reset_token_works_once_expires_and_is_stored_hashed(pool):
    person_id, _ = await make_person(pool)
    async with acting(pool, OPERATOR) as conn:
        token = await people.issue_token(conn, person_id, "reset_password")
        other = await people.issue_token(conn, person_id, "reset_password")
    stored = [row["token_hash"] for row in await pool.fetch("SELECT token_hash FROM user_tokens")]
    assert token not in str(stored) and token_hash(token) in stored
    assert await people.use_token(pool, token, "verify_email") is None  # a reset token verifies nothing
    assert await people.use_token(pool, token, "reset_password") == person_id
    assert await people.use_token(pool, token, "reset_password") is None
    await pool.execute("UPDATE user_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
                       token_hash(other))  # fmt: skip
    assert await people.use_token(pool, other, "reset_password") is None


async def test_a_new_password_ends_every_session_and_the_old_password(pool):
    person_id, email = await make_person(pool)
    async with acting(pool, OPERATOR) as conn:
        for n in range(2):
            await sessions.open_session(conn, person_id, None, f"nonce-{n}-{uuid.uuid4().hex}", "test", None,
                                        timedelta(hours=1), mfa_pending=False)  # fmt: skip
        await people.set_password(conn, person_id, "a brand new password")
        ended = await sessions.end_sessions(conn, person_id, "password changed")
    assert ended == 2 and await sessions.sessions_of(pool, person_id) == []
    assert await attempt(pool, email, PASSWORD) == people.SIGN_IN_FAILED
    assert isinstance(await attempt(pool, email, "a brand new password"), people.SignedIn)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_logs WHERE person_id = $1 AND action = 'session.ended'", person_id
        )
        == 2
    )


@pytest.mark.parametrize("password", ["short", "x" * 1025, "with a \x00 NUL inside"])
async def test_a_weak_password_is_refused_and_nothing_is_written(pool, password):
    with pytest.raises(people.WeakPassword):
        async with acting(pool, OPERATOR) as conn:
            await people.sign_up(conn, "weak@example.com", password)
    assert await pool.fetchval("SELECT count(*) FROM users") == 0


async def test_emails_are_unique_whatever_their_case(pool):
    await make_person(pool, "Someone@Example.com")
    with pytest.raises(people.EmailTaken):
        await make_person(pool, "someone@example.COM")


async def test_a_totp_code_works_once_and_backup_codes_once_each(pool):
    person_id, email = await make_person(pool)
    async with acting(pool, OPERATOR) as conn:
        secret = await people.start_totp(conn, CIPHER, person_id)
        codes = await people.confirm_totp(conn, CIPHER, person_id, pyotp.TOTP(secret).now())
    assert codes is not None and len(set(codes)) == 10
    stored = await pool.fetchrow("SELECT mfa_secret_encrypted FROM users WHERE id = $1", person_id)
    assert secret.encode() not in stored["mfa_secret_encrypted"]
    signed = await attempt(pool, email, PASSWORD)
    assert isinstance(signed, people.SignedIn) and signed.mfa_needed

    async def second(code: str) -> bool:
        async with acting(pool, OPERATOR) as conn:
            return await people.second_factor(conn, CIPHER, person_id, code, None)

    later = pyotp.TOTP(secret).at(time.time() + 30)  # the next step: the one used to turn TOTP on is spent
    assert await second(later) is True
    assert await second(later) is False  # replayed
    assert await second(codes[0]) is True
    assert await second(codes[0]) is False  # a backup code works once
    assert await second("000000") is False
    # wrong codes lock the second step too: then even a good code is refused
    for _ in range(people.MAX_FAILED_SIGN_INS):
        await second("000000")
    assert await second(codes[1]) is False
    assert await pool.fetchval("SELECT locked_until > now() FROM users WHERE id = $1", person_id)


async def test_a_sign_up_gets_no_free_allowance_to_farm(pool):
    person_id, _ = await make_person(pool)
    wallet = await pool.fetchrow(
        "SELECT u.tier, u.monthly_allowance, u.balance FROM user_credits u "
        "JOIN workspace_members m ON m.workspace_id = u.user_id WHERE m.user_id = $1",
        person_id,
    )
    assert (wallet["tier"], wallet["monthly_allowance"], wallet["balance"]) == ("trial", 0, 0)
    from ledger.money.accounts import create_user

    operators = await create_user(pool, None)  # the operator's own accounts keep the trial allowance
    assert operators["monthly_allowance"] == 100


async def test_totp_secrets_rotate_with_the_encryption_key_and_an_unreadable_one_is_a_refusal_not_an_error(pool):
    from ledger.accounts.secret_rotation import rotate_totp_secrets

    new_key = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
    person_id, _ = await make_person(pool)
    async with acting(pool, OPERATOR) as conn:
        secret = await people.start_totp(conn, CIPHER, person_id)
        codes = await people.confirm_totp(conn, CIPHER, person_id, pyotp.TOTP(secret).now())
    assert codes is not None
    ring = KeyCipher(new_key, ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="])
    report = await rotate_totp_secrets(pool, ring)
    assert (report.rotated, report.current, report.unreadable) == (1, 0, 0)
    assert (await rotate_totp_secrets(pool, ring)).current == 1  # once
    only_new = KeyCipher(new_key)
    later = pyotp.TOTP(secret).at(time.time() + 30)
    async with acting(pool, OPERATOR) as conn:
        assert await people.second_factor(conn, only_new, person_id, later, None) is True
    # under a key that opens nothing: refused, no exception; a backup code still works
    stranger = KeyCipher("YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=")
    async with acting(pool, OPERATOR) as conn:
        assert await people.second_factor(conn, stranger, person_id, pyotp.TOTP(secret).now(), None) is False
        assert await people.second_factor(conn, stranger, person_id, codes[0], None) is True


async def test_a_name_with_control_characters_is_refused_in_words_and_nothing_is_written(pool):
    from ledger.errors import LedgerError

    with pytest.raises(LedgerError, match="control characters"):
        async with acting(pool, OPERATOR) as conn:
            await people.sign_up(conn, "named@example.com", PASSWORD, "Eve\x85Bell")
    assert await pool.fetchval("SELECT count(*) FROM users") == 0
