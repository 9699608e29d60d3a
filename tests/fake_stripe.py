"""A fake Stripe API (customers, checkout sessions, subscriptions) on 127.0.0.1, and webhooks signed
as Stripe signs.

The stripe SDK talks to it for real (form-encoded requests, idempotency keys); tests read what it
received and build the events Stripe would send from the sessions and subscriptions it holds.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

WEBHOOK_SECRET = "whsec_test_secret"


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: t=<unix time>,v1=HMAC-SHA256(secret, "<t>.<payload>")."""
    t = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={signature}"


def unflatten(form: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (a[b][0][c]=v) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in form:
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for part, following in zip(parts, [*parts[1:], None], strict=True):
            if following is None:
                node[int(part) if isinstance(node, list) else part] = value
                break
            container: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None:
                    node[index] = container
                node = node[index]
            else:
                node = node.setdefault(part, container)
    return root


def _changed(obj: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in {**obj, **changes}.items() if v is not None or k not in changes}


@dataclass
class FakeStripe:
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    session_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # what created each session
    by_idempotency_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the bodies of the POSTs it received; `calls` is every request (GETs too) as (method, path)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    api_base: str = ""  # where the SDK reaches it, once started
    secret_key: str = "sk_test_123"
    # a misbehaving Stripe: fields merged into the next replies (None removes a field), the message
    # of a refused key
    customer_changes: dict[str, Any] = field(default_factory=dict)
    session_changes: dict[str, Any] = field(default_factory=dict)
    subscription_changes: dict[str, Any] = field(default_factory=dict)
    refusal: str = "Invalid API Key provided"
    # where the hosted checkout page sends `checkout.session.completed` once the buyer pays
    webhook_url: str | None = None
    deliveries: list[int] = field(default_factory=list)
    # auto top-up: the card a setup checkout saves (Stripe's test payment methods decide the
    # outcome of an off-session charge: pm_card_visa succeeds, pm_card_chargeDeclined is declined,
    # pm_card_authenticationRequired needs the customer), and the PaymentIntents made
    next_card: str = "pm_card_visa"
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    # whether a PaymentIntent's outcome is sent as its signed webhook at once (else: send_event)
    send_payment_events: bool = True

    async def _params(self, request: Request) -> dict[str, Any]:
        params = unflatten(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        self.requests.append((request.url.path, params))
        return params

    def _refuse_key(self, request: Request) -> JSONResponse | None:
        self.calls.append((request.method, request.url.path))
        if request.headers.get("authorization") != f"Bearer {self.secret_key}":
            error = {"type": "invalid_request_error", "message": self.refusal}
            return JSONResponse({"error": error}, status_code=401)
        return None

    async def create_customer(self, request: Request) -> JSONResponse:
        if (refused := self._refuse_key(request)) is not None:
            return refused
        params = await self._params(request)
        key = request.headers.get("idempotency-key")
        if key and key in self.by_idempotency_key:
            return JSONResponse(self.by_idempotency_key[key])
        customer = {
            "id": f"cus_test_{next(self.counter)}",
            "object": "customer",
            "email": params.get("email"),
            "metadata": params.get("metadata", {}),
        }
        self.customers[customer["id"]] = customer
        if key:
            self.by_idempotency_key[key] = customer
        return JSONResponse(_changed(customer, self.customer_changes))

    async def delete_customer(self, request: Request) -> JSONResponse:
        """DELETE /v1/customers/{id}: gone for good (Stripe never reuses the id); an idempotency
        key that created it still replays it, as Stripe's do for 24 hours."""
        if (refused := self._refuse_key(request)) is not None:
            return refused
        customer_id = request.path_params["id"]
        if self.customers.pop(customer_id, None) is None:
            return self._missing(f"No such customer: '{customer_id}'", "id")
        return JSONResponse({"id": customer_id, "object": "customer", "deleted": True})

    async def create_session(self, request: Request) -> JSONResponse:
        if (refused := self._refuse_key(request)) is not None:
            return refused
        params = await self._params(request)
        if params.get("customer") not in self.customers:
            # Stripe's answer naming a customer that does not exist, or was deleted
            return self._missing(f"No such customer: '{params.get('customer')}'", "customer", 400)
        number = next(self.counter)
        if params.get("mode") == "setup" and (params.get("line_items") or not params.get("currency")):
            # Stripe: setup mode takes no line items, and a currency with dynamic payment methods
            return self._missing("setup mode needs currency and no line_items", "currency", 400)
        amount = sum(
            int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1))
            for item in params.get("line_items", [])
            if "price_data" in item
        )
        session = {
            "id": f"cs_test_{number}",
            "object": "checkout.session",
            # another site than the service's (127.0.0.1), as checkout.stripe.com is
            "url": f"{self.api_base.replace('127.0.0.1', 'localhost')}/pay/cs_test_{number}",
            "mode": params["mode"],
            "customer": params["customer"],
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "payment_status": "unpaid",
            "status": "open",
            "amount_total": amount,
            "currency": next(
                (item["price_data"]["currency"] for item in params.get("line_items", []) if "price_data" in item),
                "usd",
            ),
            "payment_intent": None,
            "subscription": None,
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
        }
        if params["mode"] == "setup":
            session["setup_intent"] = f"seti_test_{number}"
        self.sessions[session["id"]] = session
        self.session_params[session["id"]] = params
        return JSONResponse(_changed(session, self.session_changes))

    async def checkout_page(self, request: Request) -> HTMLResponse:
        """Stripe's hosted checkout page, as a buyer's browser sees it: pay, or go back."""
        session = self.sessions.get(request.path_params["session_id"])
        if session is None:
            return HTMLResponse("<p>No such checkout session.</p>", status_code=404)
        amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
        page = (
            f"<!doctype html><title>Checkout</title><h1>Pay {html.escape(amount)}</h1>"
            f'<form method="post"><button type="submit">Pay {html.escape(amount)}</button></form>'
            f'<a href="{html.escape(session["cancel_url"] or "")}">Back</a>'
        )
        return HTMLResponse(page)

    async def pay(self, request: Request) -> Response:
        """The buyer paid: the session completes, Stripe sends its signed webhook, then the
        browser goes to the session's success_url."""
        session = self.sessions.get(request.path_params["session_id"])
        if session is None:
            return HTMLResponse("<p>No such checkout session.</p>", status_code=404)
        if session["mode"] == "setup":  # the card is saved: its SetupIntent succeeds, then the session
            session.update(status="complete", payment_status="no_payment_required")
            params = self.session_params[session["id"]]
            intent = {
                "id": session["setup_intent"],
                "object": "setup_intent",
                "customer": session["customer"],
                "payment_method": self.next_card,
                "status": "succeeded",
                "usage": "off_session",
                "metadata": params.get("setup_intent_data", {}).get("metadata", {}),
            }
            await self.send_event("setup_intent.succeeded", intent)
        else:
            session.update(status="complete", payment_status="paid", payment_intent=f"pi_test_{next(self.counter)}")
        if self.webhook_url is not None:
            body = json.dumps(event("checkout.session.completed", dict(session)))
            async with httpx.AsyncClient(timeout=30) as client:
                delivered = await client.post(
                    self.webhook_url,
                    content=body,
                    headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
                )
            self.deliveries.append(delivered.status_code)
        return RedirectResponse(session["success_url"], status_code=303)

    async def send_event(self, event_type: str, obj: dict[str, Any]) -> int | None:
        """Stripe's signed webhook for `obj`, to webhook_url (when set); its answer's status."""
        if self.webhook_url is None:
            return None
        body = json.dumps(event(event_type, dict(obj)))
        async with httpx.AsyncClient(timeout=30) as client:
            delivered = await client.post(
                self.webhook_url,
                content=body,
                headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
            )
        self.deliveries.append(delivered.status_code)
        return delivered.status_code

    async def create_payment_intent(self, request: Request) -> Response:
        """POST /v1/payment_intents with confirm and off_session, as auto top-up sends it. An
        idempotency key replays its first answer (a decline too), as Stripe's do."""
        if (refused := self._refuse_key(request)) is not None:
            return refused
        params = await self._params(request)
        key = request.headers.get("idempotency-key")
        if key and key in self.by_idempotency_key:
            first = self.by_idempotency_key[key]
            return JSONResponse(first["body"], status_code=first["status"])
        if params.get("customer") not in self.customers:
            return self._missing(f"No such customer: '{params.get('customer')}'", "customer", 400)
        number = next(self.counter)
        method = params.get("payment_method")
        intent: dict[str, Any] = {
            "id": f"pi_test_{number}",
            "object": "payment_intent",
            "amount": int(params["amount"]),
            "amount_received": 0,
            "currency": params["currency"],
            "customer": params["customer"],
            "payment_method": method,
            "metadata": params.get("metadata", {}),
            "latest_charge": None,
            "last_payment_error": None,
        }
        declines = {
            "pm_card_chargeDeclined": ("card_declined", "Your card was declined."),
            "pm_card_authenticationRequired": (
                "authentication_required",
                "Your card was declined. This transaction requires authentication.",
            ),
        }
        if method in declines:
            code, message = declines[method]
            intent.update(status="requires_payment_method", last_payment_error={"code": code, "message": message})
            body: dict[str, Any] = {
                "error": {"type": "card_error", "code": code, "message": message, "payment_intent": intent}
            }
            status, event_type = 402, "payment_intent.payment_failed"
        else:
            intent.update(status="succeeded", amount_received=intent["amount"], latest_charge=f"ch_test_{number}")
            body, status, event_type = intent, 200, "payment_intent.succeeded"
        self.payment_intents[intent["id"]] = intent
        if key:
            self.by_idempotency_key[key] = {"body": body, "status": status}
        task = BackgroundTask(self.send_event, event_type, intent) if self.send_payment_events else None
        return JSONResponse(body, status_code=status, background=task)

    # -- subscriptions: what a completed subscription checkout creates, and changing its price --------

    def price(self, unit_amount: int, product: str | None = None, currency: str = "usd") -> dict[str, Any]:
        """A monthly Price (and its Product when none is given), as Stripe creates from price_data."""
        if product is None:
            product = f"prod_test_{next(self.counter)}"
            self.products[product] = {"id": product, "object": "product", "name": "Subscription"}
        price = {
            "id": f"price_test_{next(self.counter)}",
            "object": "price",
            "active": True,
            "currency": currency,
            "product": product,
            "unit_amount": unit_amount,
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
            "type": "recurring",
            "livemode": False,
        }
        self.prices[price["id"]] = price
        return price

    def subscribe(
        self, customer: str | None, price: dict[str, Any], metadata: dict[str, str], status: str = "active"
    ) -> dict[str, Any]:
        """A subscription with one item at this price (what Checkout creates once it is paid)."""
        now = int(time.time())
        subscription_id = f"sub_test_{next(self.counter)}"
        item = {
            "id": f"si_test_{next(self.counter)}",
            "object": "subscription_item",
            "price": price,
            "quantity": 1,
            "subscription": subscription_id,
            "current_period_start": now,
            "current_period_end": now + 30 * 86_400,
        }
        subscription = {
            "id": subscription_id,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "metadata": dict(metadata),
            "items": {
                "object": "list",
                "data": [item],
                "has_more": False,
                "url": f"/v1/subscription_items?subscription={subscription_id}",
            },
            "cancel_at_period_end": False,
            "created": now,
            "livemode": False,
        }
        self.subscriptions[subscription_id] = subscription
        return subscription

    def complete_subscription_checkout(self, session_id: str) -> dict[str, Any]:
        """The customer paid a subscription-mode session: Stripe creates its subscription, priced as the
        session's line item, carrying subscription_data's metadata."""
        session = self.sessions[session_id]
        params = self.session_params[session_id]
        (item,) = params["line_items"]
        if "price" in item:
            price = self.prices[item["price"]]
        else:
            price = self.price(int(item["price_data"]["unit_amount"]), currency=item["price_data"]["currency"])
        subscription = self.subscribe(
            session["customer"], price, params.get("subscription_data", {}).get("metadata", {})
        )
        session.update(status="complete", payment_status="paid", subscription=subscription["id"])
        return subscription

    def _missing(self, message: str, param: str | None = None, status: int = 404) -> JSONResponse:
        error = {"type": "invalid_request_error", "code": "resource_missing", "message": message, "param": param}
        return JSONResponse({"error": error}, status_code=status)

    async def retrieve_subscription(self, request: Request) -> JSONResponse:
        if (refused := self._refuse_key(request)) is not None:
            return refused
        subscription = self.subscriptions.get(request.path_params["id"])
        if subscription is None:
            return self._missing(f"No such subscription: '{request.path_params['id']}'", "id")
        return JSONResponse(_changed(subscription, self.subscription_changes))

    async def update_subscription(self, request: Request) -> JSONResponse:
        """Stripe's update of a subscription's items (by item id: an item without one is added, which
        this fake does not do), metadata (merged key by key; an empty value removes the key) and
        proration_behavior."""
        if (refused := self._refuse_key(request)) is not None:
            return refused
        params = await self._params(request)
        subscription = self.subscriptions.get(request.path_params["id"])
        if subscription is None:
            return self._missing(f"No such subscription: '{request.path_params['id']}'", "id")
        if subscription["status"] in ("canceled", "incomplete_expired"):
            return self._missing(
                "A canceled subscription can only update its cancellation_details and metadata.", status=400
            )
        if params.get("proration_behavior", "create_prorations") not in ("create_prorations", "none", "always_invoice"):
            return self._missing("Invalid proration_behavior", "proration_behavior", status=400)
        items = {item["id"]: item for item in subscription["items"]["data"]}
        changes = []
        for index, change in enumerate(params.get("items", [])):
            item = items.get(change.get("id"))
            if item is None:
                return self._missing(f"No such subscription item: '{change.get('id')}'", f"items[{index}][id]", 400)
            if "price" in change:
                price = self.prices.get(change["price"])
                if price is None:
                    return self._missing(f"No such price: '{change['price']}'", f"items[{index}][price]", 400)
            elif "price_data" in change:
                data = change["price_data"]
                if data.get("product") not in self.products:
                    return self._missing(
                        f"No such product: '{data.get('product')}'", f"items[{index}][price_data][product]", 400
                    )
                if data.get("recurring", {}).get("interval") not in ("day", "week", "month", "year"):
                    return self._missing("Missing required param: recurring.", f"items[{index}][price_data]", 400)
                price = self.price(int(data["unit_amount"]), data["product"], data["currency"])
            else:
                continue
            changes.append((item, price))
        for item, price in changes:
            item.update(price=price, quantity=1)
        for key, value in params.get("metadata", {}).items():
            if value == "":
                subscription["metadata"].pop(key, None)
            else:
                subscription["metadata"][key] = value
        return JSONResponse(_changed(subscription, self.subscription_changes))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/customers", self.create_customer, methods=["POST"]),
                Route("/v1/customers/{id}", self.delete_customer, methods=["DELETE"]),
                Route("/v1/checkout/sessions", self.create_session, methods=["POST"]),
                Route("/v1/payment_intents", self.create_payment_intent, methods=["POST"]),
                Route("/pay/{session_id}", self.checkout_page, methods=["GET"]),
                Route("/pay/{session_id}", self.pay, methods=["POST"]),
                Route("/v1/subscriptions/{id}", self.retrieve_subscription, methods=["GET"]),
                Route("/v1/subscriptions/{id}", self.update_subscription, methods=["POST"]),
            ]
        )


def event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": event_type,
        "api_version": "2025-01-27.acacia",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }
