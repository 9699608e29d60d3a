"""Properties of Stripe event handling, on generated events: the order of delivery never matters."""

from __future__ import annotations

import time
import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.billing import checkout as stripe_checkout
from ledger.billing.events import HANDLERS, PAID_STATUSES, STATUS_RANK, TERMINAL, receive_event
from ledger.money import accounts as users
from ledger.money import credits as credits_module

PAID_TIERS = ("starter", "professional", "enterprise")
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

subscription_event = st.fixed_dictionaries(
    {
        "kind": st.just("subscription"),
        "created": st.integers(0, 4),  # a few seconds: ties in one second are common
        "status": st.sampled_from(sorted(STATUS_RANK)),
        "tier": st.sampled_from(PAID_TIERS),
        "deleted": st.booleans(),
    }
)
invoice_event = st.fixed_dictionaries(
    {
        "kind": st.just("invoice"),
        "created": st.integers(0, 4),
        "period": st.integers(0, 3),
        "tier": st.sampled_from(PAID_TIERS),
    }
)


def build(specs: list[dict[str, Any]], user_id: uuid.UUID, subscription_id: str, base: int) -> list[dict[str, Any]]:
    """Stripe events for one subscription. Ids are drawn fresh (their order is the last tie-break),
    periods start after the user was created, and within a day of now."""
    events = []
    for spec in specs:
        metadata = {"user_id": str(user_id), "tier": spec["tier"]}
        if spec["kind"] == "subscription":
            event_type = "customer.subscription.deleted" if spec["deleted"] else "customer.subscription.updated"
            status = "canceled" if spec["deleted"] else spec["status"]
            obj = {"id": subscription_id, "object": "subscription", "status": status, "metadata": metadata}
        else:
            start = base + 600 * spec["period"]
            event_type = "invoice.paid"
            obj = {
                "id": f"in_{uuid.uuid4().hex}",
                "object": "invoice",
                "subscription": subscription_id,
                "lines": {"data": [{"period": {"start": start, "end": start + 2_592_000}, "metadata": metadata}]},
            }
        events.append(
            {
                "id": f"evt_{uuid.uuid4().hex}",
                "type": event_type,
                "created": base + spec["created"],
                "data": {"object": obj},
            }
        )
    return events


async def final_state(pool, user_id: uuid.UUID, subscription_id: str) -> tuple[Any, ...]:
    user = await pool.fetchrow(
        "SELECT tier, monthly_allowance, billing_cycle_start FROM user_credits WHERE user_id = $1", user_id
    )
    sub = await pool.fetchrow(
        "SELECT status, tier, current_period_start, current_period_end, last_event_id FROM stripe_subscriptions"
        " WHERE subscription_id = $1",
        subscription_id,
    )
    return tuple(user.values()), tuple(sub.values()) if sub else None


def reordered(events: list[dict[str, Any]], twin: str, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The same events for another user and subscription (same ids but for a prefix, so ties break alike)."""
    copies = []
    for evt in events:
        obj = dict(evt["data"]["object"])
        if obj["object"] == "subscription":
            obj["id"] = twin
        else:
            obj["subscription"] = twin
        lines = obj.get("lines")
        if lines:
            line = lines["data"][0]
            obj["lines"] = {"data": [{**line, "metadata": {**line["metadata"], "user_id": str(user_id)}}]}
        else:
            obj["metadata"] = {**obj["metadata"], "user_id": str(user_id)}
        copies.append({**evt, "id": evt["id"].replace("evt_", "evt_twin_"), "data": {"object": obj}})
    return copies


@PROPERTY
@given(
    specs=st.lists(st.one_of(subscription_event, invoice_event), min_size=1, max_size=8),
    data=st.data(),
)
async def test_subscription_events_in_any_order_end_as_in_created_order(pool, specs, data):
    in_order_user = (await users.create_user(pool))["user_id"]
    shuffled_user = (await users.create_user(pool))["user_id"]
    sub_a, sub_b = f"sub_{uuid.uuid4().hex}", f"sub_{uuid.uuid4().hex}"
    base = int(time.time()) + 60
    events = build(specs, in_order_user, sub_a, base)
    twins = reordered(events, sub_b, shuffled_user)

    # created order; within one second the order the service itself uses (twins keep ids' order)
    for evt in sorted(events, key=lambda e: e["created"]):
        assert (await receive_event(pool, evt)).status in ("processed", "stale", "ignored")
    for evt in data.draw(st.permutations(twins)):
        assert (await receive_event(pool, evt)).status in ("processed", "stale", "ignored")

    (user_a, row_a), (user_b, row_b) = (
        await final_state(pool, in_order_user, sub_a),
        await final_state(pool, shuffled_user, sub_b),
    )
    assert user_a[:2] == user_b[:2]  # tier and allowance
    assert row_a[:4] == row_b[:4]  # status, tier, paid period

    # and that state is the model's: the last subscription event by (final, created, rank, id) decides
    # the status; only invoices move the cycle, to the newest period paid
    subs = [s for s in specs if s["kind"] == "subscription"]
    invoices = [s for s in specs if s["kind"] == "invoice"]
    ids = {id(s): e["id"] for s, e in zip(specs, events, strict=True)}
    if subs:
        last = max(
            subs,
            key=lambda s: (
                s["deleted"] or s["status"] in TERMINAL,
                s["created"],
                STATUS_RANK["canceled" if s["deleted"] else s["status"]],
                ids[id(s)],
            ),
        )
        status, tier = ("canceled" if last["deleted"] else last["status"]), last["tier"]
    else:
        # invoices only: the newest period's, and of two for one period the better tier
        newest = max(invoices, key=lambda s: (s["period"], PAID_TIERS.index(s["tier"])))
        status, tier = "active", newest["tier"]
    assert row_a[0] == status
    assert user_a[0] == (tier if status in PAID_STATUSES else "trial")
    if invoices:
        newest_period = base + 600 * max(s["period"] for s in invoices)
        assert user_a[2].timestamp() == user_b[2].timestamp() == newest_period


def share(credits: Decimal, part: int, whole: int) -> Decimal:
    return (credits * part / whole).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


@PROPERTY
@given(
    package=st.sampled_from([("Starter Pack", 1000, 100), ("Value Pack", 4500, 500), ("Pro Pack", 8000, 1000)]),
    cuts=st.lists(st.integers(1, 10_000), min_size=1, max_size=6, unique=True),
    data=st.data(),
)
async def test_partial_refunds_in_any_order_sum_exactly(pool, package, cuts, data):
    name, cents, credits = package
    user_id = (await users.create_user(pool))["user_id"]
    package_id = await pool.fetchval("SELECT id FROM credit_packages WHERE name = $1", name)
    payment_intent, charge_id = f"pi_{uuid.uuid4().hex}", f"ch_{uuid.uuid4().hex}"
    completed = await paid_session(pool, user_id, package_id, payment_intent, cents, credits)
    assert (await receive_event(pool, completed)).status == "processed"
    # Stripe's amount_refunded is cumulative: each refund event reports the total refunded so far
    totals = sorted({min(cents, c * cents // 10_000) for c in cuts} - {0}) or [1]
    refunds = [
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": "charge.refunded",
            "data": {
                "object": {
                    "id": charge_id,
                    "payment_intent": payment_intent,
                    "amount": cents,
                    "amount_refunded": total,
                    "currency": "usd",
                }
            },
        }
        for total in totals
    ]

    for evt in data.draw(st.permutations(refunds)):
        assert (await receive_event(pool, evt)).status == "processed"

    refunded = share(Decimal(credits), max(totals), cents)
    payment = await pool.fetchrow("SELECT * FROM stripe_payments WHERE payment_intent_id = $1", payment_intent)
    assert payment["refunded_cents"] == max(totals) and payment["credits_refunded"] == refunded
    balance = await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", user_id)
    assert balance == credits - refunded
    taken = await pool.fetchval(
        "SELECT -sum(amount) FROM credit_transactions WHERE user_id = $1 AND transaction_type = 'refund'", user_id
    )
    assert taken == refunded
    assert await pool.fetch("SELECT * FROM ledger_reconciliation") == []


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["usd", "eur", "paid", "payment", "active", "canceled", "lost", "pi_1", "sub_1", "cus_1"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
FIELDS = [
    "id",
    "mode",
    "metadata",
    "client_reference_id",
    "payment_intent",
    "payment_status",
    "amount_total",
    "amount",
    "amount_refunded",
    "currency",
    "charge",
    "status",
    "customer",
    "items",
    "lines",
    "subscription",
    "parent",
    "period_start",
    "period_end",
]


@PROPERTY
@given(
    event_type=st.sampled_from(sorted(HANDLERS)),
    obj=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8),
    created=json_values,
    ours=st.booleans(),
)
async def test_any_object_of_a_handled_type_is_stored_with_an_outcome_never_raised(
    pool, event_type, obj, created, ours
):
    """Whatever a signed event holds, it ends with a stored outcome: a 2xx (or a 409 deferral), never a 500."""
    user_id = (await users.create_user(pool))["user_id"]
    if ours:  # this service's metadata, so the handlers get past it to the other fields
        package_id = await pool.fetchval("SELECT id FROM credit_packages WHERE name = 'Value Pack'")
        obj["metadata"] = {"user_id": str(user_id), "package_id": str(package_id), "tier": "starter"}
        obj.setdefault("mode", "payment")
    evt = {"id": f"evt_{uuid.uuid4().hex}", "type": event_type, "created": created, "data": {"object": obj}}

    outcome = await receive_event(pool, evt)

    assert outcome.status in ("processed", "ignored", "stale", "rejected", "review", "deferred")
    # every rejection comes from a check that says what is wrong, not from a Python error caught late
    assert outcome.status != "rejected" or not outcome.detail.startswith(
        ("TypeError", "ValueError", "KeyError", "AttributeError", "ArithmeticError", "Overflow", "Invalid")
    ), outcome.detail
    assert await pool.fetchval("SELECT status FROM stripe_events WHERE id = $1", evt["id"]) == outcome.status
    assert await pool.fetch("SELECT * FROM ledger_reconciliation") == []


async def paid_session(
    pool, user_id: uuid.UUID, package_id: Any, payment_intent: str, cents: int, credits: int
) -> dict[str, Any]:
    session = {
        "id": f"cs_{uuid.uuid4().hex}",
        "mode": "payment",
        "payment_status": "paid",
        "payment_intent": payment_intent,
        "amount_total": cents,
        "currency": "usd",
        "metadata": {"user_id": str(user_id), "package_id": str(package_id), "credits": str(credits)},
    }
    await stripe_checkout.record_session(pool, session["id"], user_id, package_id, Decimal(credits), cents)
    return {"id": f"evt_{uuid.uuid4().hex}", "type": "checkout.session.completed", "data": {"object": session}}


claim = st.one_of(
    st.tuples(st.just("refund"), st.integers(1, 10_000)),  # basis points of the charge refunded in this refund
    st.tuples(st.just("created"), st.integers(0, 3), st.integers(1, 10_000)),  # dispute, basis points disputed
    st.tuples(st.just("closed"), st.integers(0, 3), st.sampled_from(["won", "lost"])),
)


@PROPERTY
@given(
    package=st.sampled_from([("Starter Pack", 1000, 100), ("Value Pack", 4500, 500)]),
    claims=st.lists(claim, min_size=1, max_size=10),
)
async def test_refunds_and_disputes_of_one_payment_share_one_cap(pool, package, claims):
    """However refunds and disputes (several, won or lost, before or after a refund) of one payment
    come, the credits held and taken back together never exceed what the purchase credited, and once
    no dispute is open, exactly the share of (refunded + lost-disputed cents, at most the charge) is
    taken (the balance is large enough to allow it)."""
    name, cents, credits = package
    user_id = (await users.create_user(pool))["user_id"]
    await credits_module.add_user_credits(pool, user_id, 100_000, "bonus", None, "enough to take back from")
    package_id = await pool.fetchval("SELECT id FROM credit_packages WHERE name = $1", name)
    payment_intent, charge_id = f"pi_{uuid.uuid4().hex}", f"ch_{uuid.uuid4().hex}"
    assert (
        await receive_event(pool, await paid_session(pool, user_id, package_id, payment_intent, cents, credits))
    ).status == ("processed")
    disputes = [f"dp_{uuid.uuid4().hex}" for _ in range(4)]
    disputed: dict[int, int] = {}  # a dispute's cents: the first event of it that is applied sets them
    closed: dict[int, str] = {}
    refunded = 0

    def dispute(i: int, status: str) -> dict[str, Any]:
        return {
            "id": disputes[i],
            "amount": disputed[i],
            "currency": "usd",
            "charge": charge_id,
            "payment_intent": payment_intent,
            "status": status,
        }

    async def taken_and_held() -> tuple[Decimal, Decimal]:
        taken = await pool.fetchval(
            "SELECT coalesce(-sum(amount), 0) FROM credit_transactions"
            " WHERE user_id = $1 AND transaction_type = 'refund'",
            user_id,
        )
        held = await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", user_id)
        return taken, held

    for step in claims:
        if step[0] == "refund":
            refunded = min(cents, refunded + max(1, step[1] * cents // 10_000))
            obj = {"id": charge_id, "payment_intent": payment_intent, "amount": cents, "currency": "usd"}
            evt = {"type": "charge.refunded", "data": {"object": {**obj, "amount_refunded": refunded}}}
        else:
            i = step[1]
            if i not in disputed:
                disputed[i] = max(1, step[2] * cents // 10_000) if step[0] == "created" else cents
            if step[0] == "created":
                evt = {"type": "charge.dispute.created", "data": {"object": dispute(i, "needs_response")}}
            else:
                closed.setdefault(i, step[2])
                evt = {"type": "charge.dispute.closed", "data": {"object": dispute(i, step[2])}}
        outcome = await receive_event(pool, {"id": f"evt_{uuid.uuid4().hex}", **evt})
        assert outcome.status in ("processed", "stale"), outcome
        taken, held = await taken_and_held()
        assert taken + held <= credits

    for i in disputed:  # close what is still open (won): the holds go, the cap settles
        if i not in closed:
            closed[i] = "won"
            evt = {"type": "charge.dispute.closed", "data": {"object": dispute(i, "won")}}
            await receive_event(pool, {"id": f"evt_{uuid.uuid4().hex}", **evt})
    lost = sum(disputed[i] for i, status in closed.items() if status == "lost")
    taken, held = await taken_and_held()
    assert held == 0
    assert taken == share(Decimal(credits), min(refunded + lost, cents), cents) <= credits
    assert await pool.fetch("SELECT * FROM ledger_reconciliation") == []
