"""The event types (the same list as sql's ledger_event_types(); a test checks they agree) and the
body a webhook receives for an event, in the Standard Webhooks payload shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

EVENT_TYPES: tuple[str, ...] = (
    "request.completed",
    "request.failed",
    "rate_limit.hit",
    "budget.threshold",
    "budget.exceeded",
    "alert.triggered",
    "provider.down",
    "provider.up",
    "balance.low",
    "credits.purchased",
    "credits.refunded",
    "credits.expiring",
    "auto_top_up.succeeded",
    "auto_top_up.failed",
    "webhook.disabled",
    "webhook.test",
)
# '*' subscribes to every type but request.completed: one per request is sent only when named
EVERY_EVENT = "*"
NAMED_ONLY = frozenset({"request.completed"})
# what the money contacts (owners and billing contacts) are emailed about (ledger_emailed_event_types)
EMAILED = frozenset(
    {"balance.low", "budget.threshold", "budget.exceeded", "webhook.disabled", "auto_top_up.failed", "credits.expiring"}
)


def event_body(event_id: str, event_type: str, data: dict[str, Any], created_at: datetime) -> bytes:
    """What is posted: {"type", "timestamp", "data"} (the Standard Webhooks payload), the same bytes
    for every attempt of one message, so a receiver may compare them."""
    payload = {
        "id": event_id,
        "type": event_type,
        "timestamp": created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def message_id(event_id: str) -> str:
    """The webhook-id header: one per event, the same on every attempt and every endpoint, so a
    receiver drops a redelivery by it."""
    return "msg_" + event_id.replace("-", "")
