"""The session cookie: only this service's secret makes one that reads back, for its kind, until
its expiry; any change to it, or to its CSRF token, is refused."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.web.sessions import MAX_COOKIE_CHARS, SessionSigner

SECRET = b"s" * 32
NOW = 1_800_000_000
kinds = st.sampled_from(["user", "admin"])
subjects = st.text(min_size=1, max_size=60)
users = st.none() | st.uuids().map(str)


@given(kinds, subjects, users, st.integers(1, 30 * 86400))
def test_a_cookie_reads_back_as_issued_until_it_expires(kind, subject, user_id, ttl):
    signer = SessionSigner(SECRET)
    cookie = signer.issue(kind, subject, user_id, ttl, now=NOW)

    session = signer.read(cookie, kind, now=NOW + ttl - 1)

    assert session is not None and (session.kind, session.subject, session.user_id) == (kind, subject, user_id)
    assert signer.read(cookie, kind, now=NOW + ttl) is None
    assert signer.read(cookie, "admin" if kind == "user" else "user", now=NOW) is None


@given(kinds, subjects, users, st.data())
def test_any_changed_character_makes_the_cookie_no_session(kind, subject, user_id, data):
    signer = SessionSigner(SECRET)
    cookie = signer.issue(kind, subject, user_id, 3600, now=NOW)
    at = data.draw(st.integers(0, len(cookie) - 1))
    replacement = data.draw(
        st.sampled_from(string.ascii_letters + string.digits + "-_.=").filter(lambda c: c != cookie[at])
    )
    changed = cookie[:at] + replacement + cookie[at + 1 :]

    assert signer.read(changed, kind, now=NOW) is None


@given(st.text(max_size=MAX_COOKIE_CHARS + 10))
def test_any_text_that_is_not_a_cookie_of_ours_is_no_session(text):
    assert SessionSigner(SECRET).read(text, "user", now=NOW) is None


def test_another_secret_reads_no_cookie_of_this_one():
    cookie = SessionSigner(SECRET).issue("admin", "x", None, 3600, now=NOW)
    assert SessionSigner(b"t" * 32).read(cookie, "admin", now=NOW) is None


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_a_csrf_token_is_good_for_its_own_session_only(nonce, other):
    signer = SessionSigner(SECRET)
    token = signer.csrf_token(nonce)
    assert signer.csrf_ok(nonce, token)
    assert signer.csrf_ok(other, token) == (other == nonce)
    assert not signer.csrf_ok(nonce, None) and not signer.csrf_ok(nonce, token[:-1])


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        SessionSigner(b"short")
