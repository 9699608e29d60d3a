"""The emails owed for events (notification_emails rows, written by ledger_emit to the workspace's
owners and billing contacts): what each says, and sending them with a bounded retry."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from ledger.accounts.mail import Mailer, MailNotSent
from ledger.db.queries import query

log = logging.getLogger("ledger.notify")
EMAIL_RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))
EMAIL_LEASE_SECONDS = 120


def _scope(data: dict[str, Any]) -> str:
    scope = data.get("scope") or {}
    kind, ident = scope.get("type", "workspace"), scope.get("id", "")
    model = f" for {data['model']}" if data.get("model") else ""
    return ("the workspace" if kind == "workspace" else f"{kind.replace('_', ' ')} {ident}") + model


def email_text(event_type: str, data: dict[str, Any], workspace: str) -> tuple[str, str]:
    """(subject, text) of the email about one event. Figures are credits, as the dashboard shows."""
    if event_type == "balance.low":
        return (
            f"{workspace}: balance low ({data.get('spendable')} credits left)",
            f"What is left to spend in {workspace} fell below your threshold of {data.get('threshold')} credits:\n"
            f"{data.get('spendable')} credits remain (balance and monthly allowance).\n\n"
            "Requests are refused with 402 once nothing is left. Buy credits or turn on auto top-up on the\n"
            "dashboard's billing page. You are told once per crossing, not once per request.\n",
        )
    if event_type == "budget.threshold":
        return (
            f"{workspace}: budget at {data.get('threshold')}% ({data.get('spent')} of {data.get('amount')} credits)",
            f"The {data.get('period')} budget on {_scope(data)} in {workspace} reached {data.get('threshold')}%:\n"
            f"{data.get('spent')} of {data.get('amount')} credits spent this period.\n\n"
            + (
                "It is a hard budget: requests that would pass it are refused until the period ends.\n"
                if data.get("hard")
                else "It is a soft budget: requests go on; this is a warning.\n"
            ),
        )
    if event_type == "budget.exceeded":
        return (
            f"{workspace}: budget reached ({data.get('amount')} credits)",
            f"The {data.get('period')} budget on {_scope(data)} in {workspace} is used up: "
            f"{data.get('spent')} of {data.get('amount')} credits.\n\n"
            + (
                "It is a hard budget: requests on it are refused (402) until the period ends or the budget is raised.\n"
                if data.get("hard")
                else "It is a soft budget: requests go on.\n"
            ),
        )
    if event_type == "webhook.disabled":
        return (
            f"{workspace}: webhook {data.get('name')} disabled",
            f"The webhook {data.get('name')} ({data.get('url')}) in {workspace} was disabled:\n"
            f"{data.get('reason')}\n\n"
            "Its undelivered events wait. Fix the endpoint and enable the webhook again (dashboard,\n"
            "or POST /v1/organization/webhooks/{id} with enabled: true); they go out then, if they\n"
            "are less than three days old.\n",
        )
    summary = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    return f"{workspace}: {event_type}", f"Event {event_type} in {workspace}:\n\n{summary}\n"


async def send_due(pool: asyncpg.Pool, mailer: Mailer, batch: int = 50) -> int:
    """One pass: every due email (at most `batch`) is sent once. Returns how many were tried."""
    rows = await pool.fetch(query("claim_notification_emails"), batch, EMAIL_LEASE_SECONDS)
    for row in rows:
        subject, text = email_text(row["event_type"], json.loads(row["data"]), row["workspace_name"])
        try:
            await mailer.send(row["to_email"], subject, text)
        except Exception as exc:  # MailNotSent, or an address the mail library cannot take
            if not isinstance(exc, MailNotSent):
                log.exception("notification email %s could not be built or sent", row["id"])
            tries: int = row["attempts"]
            again = datetime.now(UTC) + EMAIL_RETRY_DELAYS[tries - 1] if tries <= len(EMAIL_RETRY_DELAYS) else None
            log.warning("notification email %s (%s) not sent: %s", row["id"], row["event_type"], exc)
            await pool.execute(query("notification_email_not_sent"), row["id"], str(exc), again)
        else:
            await pool.execute(query("notification_email_sent"), row["id"])
    return len(rows)
