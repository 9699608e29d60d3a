"""What each channel is sent, in each service's documented shape: Slack's and Discord's incoming
webhooks ({"text"}, {"content"}), a Microsoft Teams workflow's Adaptive Card message, PagerDuty's
Events API v2 (trigger and resolve under one dedup_key), a Standard Webhooks signed POST, and an
email."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.notify.emails import email_text

SOURCE = "credit-ledger"


@dataclass(frozen=True, slots=True)
class Note:
    """One message: an alert's opening or resolution, or a channel's test."""

    action: str  # trigger, resolve, verify
    workspace: str
    channel_name: str
    title: str
    text: str
    severity: str
    dedup_key: str
    details: dict[str, Any]
    at: datetime


def note_of(row: Any, code: str | None) -> Note:
    """The message a claimed alert_notifications row stands for."""
    action, workspace = row["action"], row["workspace_name"]
    if action == "event":  # a money event: what its email says
        title, text = email_text(row["event_type"], json.loads(row["event_data"]), workspace)
        severity = (
            "warning" if row["event_type"] in ("balance.low", "budget.exceeded", "auto_top_up.failed") else "info"
        )
        details = {"event_type": row["event_type"]}
        dedup = f"{SOURCE}-event-{row['event_id']}"
        return Note(action, workspace, row["channel_name"], title, text.strip(), severity, dedup, details,
                    datetime.now(UTC))  # fmt: skip
    if action == "verify":
        title = f"Test message for the channel {row['channel_name']}"
        text = (
            f"This is the credit ledger's test message for the notification channel '{row['channel_name']}' of "
            f"{workspace}. To start receiving alerts here, enter the code {code} on the dashboard or with "
            f"POST /v1/organization/notification_channels/{row['channel_id']}/verify (good for a day)."
        )
        return Note(action, workspace, row["channel_name"], title, text, "info",
                    f"{SOURCE}-test-{row['id']}", {"code": code}, datetime.now(UTC))  # fmt: skip
    resolved = action == "resolve"
    title = f"{'Resolved' if resolved else 'Alert'} [{row['severity']}] {row['rule_name']} in {workspace}"
    text = row["message"] + (f"\nResolved: {row['resolution_note'] or 'the condition cleared'}." if resolved else "")
    details = {
        "alert_event_id": str(row["alert_event_id"]),
        "rule": row["rule_name"],
        "condition_type": row["condition_type"],
        "value": None if row["trigger_value"] is None else str(row["trigger_value"]),
        "threshold": None if row["threshold_value"] is None else str(row["threshold_value"]),
        "workspace": workspace,
    }
    at = row["resolved_at"] if resolved and row["resolved_at"] else row["triggered_at"]
    return Note(action, workspace, row["channel_name"], title, text, row["severity"],
                f"{SOURCE}-alert-{row['alert_event_id']}", details, at)  # fmt: skip


def slack(note: Note) -> dict[str, Any]:
    """Slack incoming webhook: `text` is required (and what notifications show)."""
    icon = {"trigger": ":rotating_light:", "resolve": ":white_check_mark:", "verify": ":wave:", "event": ":moneybag:"}
    return {"text": f"{icon[note.action]} *{note.title}*\n{note.text}"}


def discord(note: Note) -> dict[str, Any]:
    """Discord webhook: `content`, at most 2,000 characters; no mentions are pinged."""
    return {"content": f"**{note.title}**\n{note.text}"[:2000], "allowed_mentions": {"parse": []}}


def teams(note: Note) -> dict[str, Any]:
    """A Teams workflow ("Post to a channel when a webhook request is received"): a message with
    one Adaptive Card attachment."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": note.title, "wrap": True},
            {"type": "TextBlock", "text": note.text, "wrap": True},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def pagerduty(note: Note, routing_key: str, action: str | None = None) -> dict[str, Any]:
    """Events API v2: trigger (summary at most 1,024 characters) or resolve, one dedup_key per alert."""
    action = action or ("resolve" if note.action == "resolve" else "trigger")
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": note.dedup_key}
    if action == "trigger":
        event["payload"] = {
            "summary": f"{note.title}: {note.text}"[:1024],
            "source": SOURCE,
            "severity": note.severity,
            "timestamp": note.at.astimezone(UTC).isoformat(),
            "custom_details": note.details,
        }
        event["client"] = "credit ledger"
    return event


def webhook_body(note: Note) -> bytes:
    kind = {"trigger": "alert.triggered", "resolve": "alert.resolved", "verify": "channel.verify"}.get(
        note.action, str(note.details.get("event_type", "event"))
    )
    payload = {
        "type": kind,
        "timestamp": note.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {"title": note.title, "text": note.text, "severity": note.severity, **note.details},
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def email(note: Note) -> tuple[str, str]:
    return note.title, note.text + "\n"
