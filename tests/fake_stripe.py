"""A fake Stripe API (customers, checkout sessions) on 127.0.0.1, and webhooks signed as Stripe signs.

The stripe SDK talks to it for real (form-encoded requests, idempotency keys); tests read what it
received and build the events Stripe would send from the sessions it created.
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
    by_idempotency_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    api_base: str = ""  # where the SDK reaches it, once started
    secret_key: str = "sk_test_123"
    # a misbehaving Stripe: fields merged into the next replies (None removes a field), the message
    # of a refused key
    customer_changes: dict[str, Any] = field(default_factory=dict)
    session_changes: dict[str, Any] = field(default_factory=dict)
    refusal: str = "Invalid API Key provided"
    # where the hosted checkout page sends `checkout.session.completed` once the buyer pays
    webhook_url: str | None = None
    deliveries: list[int] = field(default_factory=list)

    async def _params(self, request: Request) -> dict[str, Any]:
        params = unflatten(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        self.requests.append((request.url.path, params))
        return params

    def _refuse_key(self, request: Request) -> JSONResponse | None:
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

    async def create_session(self, request: Request) -> JSONResponse:
        if (refused := self._refuse_key(request)) is not None:
            return refused
        params = await self._params(request)
        if params.get("customer") not in self.customers:
            return JSONResponse(
                {"error": {"type": "invalid_request_error", "message": "No such customer"}}, status_code=400
            )
        number = next(self.counter)
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
        self.sessions[session["id"]] = session
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

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/customers", self.create_customer, methods=["POST"]),
                Route("/v1/checkout/sessions", self.create_session, methods=["POST"]),
                Route("/pay/{session_id}", self.checkout_page, methods=["GET"]),
                Route("/pay/{session_id}", self.pay, methods=["POST"]),
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
