"""Properties of the notification rules, over generated input: the retry schedule, which
addresses count as public, which URLs are accepted, and the event list the SQL and Python share."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidWebhook
from ledger.notify.events import EMAILED, EVENT_TYPES, event_body
from ledger.notify.schedule import ATTEMPTS, GIVE_UP_AFTER, RETRY_DELAYS, next_attempt_at
from ledger.notify.targets import checked_url, is_public, pinned, refuse_private

T0 = datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC)  # a leap day's last second


def test_the_schedule_backs_off_and_ends_within_three_days():
    assert list(RETRY_DELAYS) == sorted(RETRY_DELAYS)  # never shorter than the one before
    assert timedelta(days=2, hours=23) < sum(RETRY_DELAYS, timedelta()) <= GIVE_UP_AFTER


@given(st.integers(min_value=-5, max_value=50), st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4)))
def test_next_attempt_is_later_and_never_past_three_days_after_queueing(attempt, since_queued):
    failed_at = T0 + since_queued
    due = next_attempt_at(attempt, failed_at, T0)
    if due is None:
        assert attempt < 1 or attempt >= ATTEMPTS or failed_at + RETRY_DELAYS[attempt - 1] > T0 + GIVE_UP_AFTER
    else:
        assert failed_at < due <= T0 + GIVE_UP_AFTER
        assert due - failed_at == RETRY_DELAYS[attempt - 1]


PRIVATE_NETWORKS = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "0.0.0.0/8",
    "224.0.0.0/4",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
]


@given(st.sampled_from(PRIVATE_NETWORKS), st.integers(min_value=0))
def test_no_address_of_a_private_network_counts_as_public(network, offset):
    net = ipaddress.ip_network(network)
    address = net[offset % net.num_addresses]
    assert not is_public(address)
    if isinstance(address, ipaddress.IPv4Address):  # nor when written as IPv4-mapped IPv6
        assert not is_public(ipaddress.IPv6Address(f"::ffff:{address}"))


@given(st.text(max_size=300))
def test_any_url_text_is_accepted_or_refused_with_invalid_webhook(text):
    try:
        url = checked_url(text)
    except InvalidWebhook as exc:
        assert exc.param == "url"
    else:
        assert url.startswith(("http://", "https://")) and len(url) <= 2000


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1/hook",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://0.0.0.0/",
        "http://localhost:9000/",
        "http://metadata.google.internal/",
        # IPv6 forms that carry an IPv4 address: compatible, translated, NAT64, 6to4, Teredo
        "http://[::127.0.0.1]/",
        "http://[::7f00:1]/",
        "http://[::ffff:0:7f00:1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[64:ff9b::5db8:d822]/",
        "http://[2002:7f00:1::]/",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    ],
)
async def test_private_and_unresolvable_targets_are_refused(url):
    with pytest.raises(InvalidWebhook) as refused:
        await refuse_private(checked_url(url), allow_private=False)
    assert refused.value.param == "url"
    await refuse_private(checked_url(url), allow_private=True)  # the operator may allow them


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "javascript:alert(1)",
        "http://user:pw@example.com/",
        "http:///nohost",
        "http://example.com/#frag",
        "http://exa mple.com/",
        "http://example.com:0/",
        "http://example.com:99999/",
        "https://example.com/\x00",
        "//example.com/",
        "http://" + "a" * 2000 + ".com/",
    ],
)
def test_urls_that_are_not_plain_http_targets_are_refused(url):
    with pytest.raises(InvalidWebhook):
        checked_url(url)


def test_a_scheme_in_capitals_is_taken_as_its_lowercase():
    assert checked_url("HTTP://example.com/Path") == "http://example.com/Path"
    assert checked_url("HtTpS://example.com/") == "https://example.com/"


def test_an_attempt_connects_to_the_address_checked_with_the_hosts_name_for_http_and_tls():
    https = pinned("https://hooks.example.com:8443/in?x=1", ["93.184.216.34"])
    assert https.url == "https://93.184.216.34:8443/in?x=1"
    assert https.headers == {"host": "hooks.example.com:8443"} and https.extensions == {
        "sni_hostname": "hooks.example.com"
    }
    six = pinned("http://hooks.example.com/in", ["2606:2800:220:1:248:1893:25c8:1946"])
    assert six.url == "http://[2606:2800:220:1:248:1893:25c8:1946]/in" and six.extensions == {}
    assert pinned("http://93.184.216.34/", ["93.184.216.34"]).headers == {}  # a literal address: as it is
    assert pinned("http://x.example/", []).url == "http://x.example/"  # private targets allowed: nothing pinned


async def test_the_event_types_are_the_databases(pool):
    assert tuple(await pool.fetchval("SELECT ledger_event_types()")) == EVENT_TYPES
    assert frozenset(await pool.fetchval("SELECT ledger_emailed_event_types()")) == EMAILED


@given(st.dictionaries(st.text(max_size=20), st.one_of(st.text(), st.integers(), st.none()), max_size=5))
def test_a_body_is_the_same_bytes_every_time_and_keeps_money_as_strings(data):
    body = event_body("e1", "credits.purchased", data, T0)
    assert body == event_body("e1", "credits.purchased", dict(reversed(list(data.items()))), T0)
    assert b'"timestamp":"2028-02-29T23:59:59Z"' in body
