"""The building blocks of sign-in without a database: argon2 passwords, TOTP steps, backup codes,
one-time tokens."""

from __future__ import annotations

import pyotp
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.accounts.passwords import hash_password, password_problem, verify_password
from ledger.accounts.tokens import new_token, token_hash
from ledger.accounts.totp import hash_backup_code, new_backup_codes, new_totp_secret, normalise_backup_code, totp_ok

PASSWORDS = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=10, max_size=60)


@settings(max_examples=15, deadline=None)
@given(PASSWORDS, PASSWORDS)
def test_a_hashed_password_verifies_itself_and_no_other(password, other):
    stored = hash_password(password)
    assert stored.startswith("$argon2id$") and password not in stored
    assert verify_password(stored, password)
    assert verify_password(stored, other) == (other == password)


def test_a_malformed_hash_is_false_not_an_error():
    for stored in ("", "not a hash", "$argon2id$v=19$m=1$broken", "$2b$12$abcdefghijklmnopqrstuv"):
        assert verify_password(stored, "correct horse battery") is False


def test_password_problems_are_told_in_words():
    assert password_problem("short") and password_problem("x" * 1025) and password_problem("ten chars\x00!")
    assert password_problem("a" * 10) is None


def test_a_totp_code_counts_one_step_either_side_and_no_more():
    secret, now = new_totp_secret(), 1_800_000_015.0
    code = pyotp.TOTP(secret).at(now)
    step = int(now // 30)
    assert totp_ok(secret, code, now) == step
    assert totp_ok(secret, code, now + 30) == step and totp_ok(secret, code, now - 30) == step
    assert totp_ok(secret, code, now + 90) is None and totp_ok(secret, code, now - 90) is None
    assert totp_ok(secret, code, now, last_used_step=step) is None  # used once already
    assert totp_ok(secret, code[:3] + " " + code[3:], now) == step
    for bad in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):  # Arabic-Indic digits are not ASCII digits
        assert totp_ok(secret, bad, now) is None


def test_backup_codes_are_distinct_and_hash_alike_however_they_are_typed():
    codes = new_backup_codes()
    assert len(set(codes)) == 10 and all(len(normalise_backup_code(c)) == 8 for c in codes)
    code = codes[0]
    assert hash_backup_code(code) == hash_backup_code(code.upper().replace("-", " ")) != hash_backup_code(codes[1])


def test_tokens_are_random_and_only_their_hash_is_kept():
    first, second = new_token("pr_"), new_token("pr_")
    assert first.startswith("pr_") and first != second and len(first) == 3 + 43
    assert len(token_hash(first)) == 64 and first not in token_hash(first)
    assert token_hash(first) == token_hash(first) != token_hash(second)
