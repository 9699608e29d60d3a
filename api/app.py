"""App factory; the lifespan opens the asyncpg pool and the one shared aiohttp session upstream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from api.demo import MOUNT_PATH, create_demo_app
from api.errors import EXCEPTION_HANDLERS
from api.metrics import metrics_endpoint
from api.middleware import InputGuard, RequestContext
from api.openapi import openapi_json
from api.routes import (
    account,
    admin,
    chat,
    completions,
    embeddings,
    health,
    keys,
    messages,
    models,
    organization,
    organization_alerts,
    organization_controls,
    organization_top_up,
    organization_webhooks,
    provider_keys,
    purchases,
    responses,
    webhooks,
)
from api.services import Services
from api.web import (
    admin_pages,
    admin_workspaces,
    control_pages,
    key_pages,
    notification_pages,
    person_pages,
    team_pages,
    user_pages,
)
from api.web.pages import STATIC_DIR, http_error_page
from api.web.sessions import SessionSigner
from ledger.accounts.mail import mailer_of_settings
from ledger.billing import auto_top_up
from ledger.billing.checkout import stripe_client
from ledger.db.background import wait_for_background_writes
from ledger.db.pool import create_pool
from ledger.gateway.byok import cipher_of_settings
from ledger.gateway.catalog import Catalog
from ledger.gateway.price_catalog import sync_at_start
from ledger.gateway.upstream import open_session
from ledger.metrics import Metrics
from ledger.money.maintenance import run_forever
from ledger.notify import worker as notify_worker
from ledger.notify.channel_delivery import ChannelPolicy
from ledger.notify.delivery import NO_CIPHER, delivery_policy
from ledger.settings import ProviderConfig, Settings

ROUTES: list[Route | Mount] = [
    Route("/healthz", health.healthz),
    Route("/readyz", health.readyz),
    Route("/metrics", metrics_endpoint),
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/v1/chat/completions", chat.chat_completions, methods=["POST"]),
    Route("/v1/responses", responses.create_response, methods=["POST"]),
    Route("/v1/messages", messages.messages, methods=["POST"]),
    Route("/v1/messages/count_tokens", messages.count_tokens, methods=["POST"]),
    Route("/v1/completions", completions.completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings.embeddings, methods=["POST"]),
    Route("/v1/models", models.list_models),
    Route("/v1/credits/balance", account.balance),
    Route("/v1/account", account.change_account, methods=["PATCH"]),
    Route("/v1/credits/transactions", account.transactions),
    Route("/v1/usage", account.usage),
    Route("/v1/usage/daily", account.usage_daily),
    Route("/v1/keys", keys.list_keys, methods=["GET"]),
    Route("/v1/keys", keys.create_key, methods=["POST"]),
    Route("/v1/keys/{key_id}", keys.revoke_key, methods=["DELETE"]),
    Route("/v1/provider-keys", provider_keys.list_provider_keys, methods=["GET"]),
    Route("/v1/provider-keys", provider_keys.add_provider_key, methods=["POST"]),
    Route("/v1/provider-keys/{key_id}", provider_keys.delete_provider_key, methods=["DELETE"]),
    Route("/v1/credits/packages", purchases.packages),
    Route("/v1/credits/checkout", purchases.credit_checkout, methods=["POST"]),
    Route("/v1/subscriptions/checkout", purchases.subscription_checkout, methods=["POST"]),
    Route("/v1/subscriptions/change", purchases.change_subscription, methods=["POST"]),
    Route("/v1/organization/users", organization.list_users, methods=["GET"]),
    Route("/v1/organization/users/{user_id}", organization.get_user, methods=["GET"]),
    Route("/v1/organization/users/{user_id}", organization.modify_user, methods=["POST"]),
    Route("/v1/organization/users/{user_id}", organization.delete_user, methods=["DELETE"]),
    Route("/v1/organization/invites", organization.list_invites, methods=["GET"]),
    Route("/v1/organization/invites", organization.create_invite, methods=["POST"]),
    Route("/v1/organization/invites/{invite_id}", organization.get_invite, methods=["GET"]),
    Route("/v1/organization/invites/{invite_id}", organization.delete_invite, methods=["DELETE"]),
    Route("/v1/organization/projects", organization.list_projects, methods=["GET"]),
    Route("/v1/organization/projects", organization.create_project, methods=["POST"]),
    Route("/v1/organization/projects/{project_id}", organization.get_project, methods=["GET"]),
    Route("/v1/organization/projects/{project_id}", organization.modify_project, methods=["POST"]),
    Route("/v1/organization/projects/{project_id}/archive", organization.archive_project, methods=["POST"]),
    Route("/v1/organization/projects/{project_id}/api_keys", organization.list_project_keys, methods=["GET"]),
    Route("/v1/organization/projects/{project_id}/api_keys", organization.create_project_key, methods=["POST"]),
    Route("/v1/organization/projects/{project_id}/api_keys/{key_id}", organization.get_project_key, methods=["GET"]),
    Route(
        "/v1/organization/projects/{project_id}/api_keys/{key_id}", organization.modify_project_key, methods=["POST"]
    ),
    Route("/v1/organization/budgets", organization_controls.list_budgets, methods=["GET"]),
    Route("/v1/organization/budgets", organization_controls.create_budget, methods=["POST"]),
    Route("/v1/organization/budgets/{budget_id}", organization_controls.get_budget, methods=["GET"]),
    Route("/v1/organization/budgets/{budget_id}", organization_controls.modify_budget, methods=["POST"]),
    Route("/v1/organization/budgets/{budget_id}", organization_controls.delete_budget, methods=["DELETE"]),
    Route("/v1/organization/rate_limits", organization_controls.list_rate_limits, methods=["GET"]),
    Route("/v1/organization/rate_limits", organization_controls.create_rate_limit, methods=["POST"]),
    Route("/v1/organization/rate_limits/{rate_limit_id}", organization_controls.get_rate_limit, methods=["GET"]),
    Route("/v1/organization/rate_limits/{rate_limit_id}", organization_controls.modify_rate_limit, methods=["POST"]),
    Route("/v1/organization/rate_limits/{rate_limit_id}", organization_controls.delete_rate_limit, methods=["DELETE"]),
    Route("/v1/organization/rate_limit_presets", organization_controls.list_presets, methods=["GET"]),
    Route("/v1/organization/webhooks", organization_webhooks.list_webhooks, methods=["GET"]),
    Route("/v1/organization/webhooks", organization_webhooks.create_webhook, methods=["POST"]),
    Route("/v1/organization/webhooks/{webhook_id}", organization_webhooks.get_webhook, methods=["GET"]),
    Route("/v1/organization/webhooks/{webhook_id}", organization_webhooks.modify_webhook, methods=["POST"]),
    Route("/v1/organization/webhooks/{webhook_id}", organization_webhooks.delete_webhook, methods=["DELETE"]),
    Route(
        "/v1/organization/webhooks/{webhook_id}/rotate_secret", organization_webhooks.rotate_secret, methods=["POST"]
    ),
    Route("/v1/organization/webhooks/{webhook_id}/test", organization_webhooks.send_test, methods=["POST"]),
    Route("/v1/organization/webhooks/{webhook_id}/deliveries", organization_webhooks.list_deliveries, methods=["GET"]),
    Route(
        "/v1/organization/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
        organization_webhooks.replay_delivery,
        methods=["POST"],
    ),
    Route("/v1/organization/notification_settings", organization_webhooks.get_settings, methods=["GET"]),
    Route("/v1/organization/credit_grants", organization_webhooks.list_grants, methods=["GET"]),
    Route("/v1/organization/notification_channels", organization_alerts.list_channels, methods=["GET"]),
    Route("/v1/organization/notification_channels", organization_alerts.create_channel, methods=["POST"]),
    Route("/v1/organization/notification_channels/{channel_id}", organization_alerts.get_channel, methods=["GET"]),
    Route("/v1/organization/notification_channels/{channel_id}", organization_alerts.modify_channel, methods=["POST"]),
    Route(
        "/v1/organization/notification_channels/{channel_id}", organization_alerts.delete_channel, methods=["DELETE"]
    ),
    Route(
        "/v1/organization/notification_channels/{channel_id}/verify",
        organization_alerts.verify_channel,
        methods=["POST"],
    ),
    Route(
        "/v1/organization/notification_channels/{channel_id}/test", organization_alerts.test_channel, methods=["POST"]
    ),
    Route("/v1/organization/alert_rules", organization_alerts.list_rules, methods=["GET"]),
    Route("/v1/organization/alert_rules", organization_alerts.create_rule, methods=["POST"]),
    Route("/v1/organization/alert_rules/{rule_id}", organization_alerts.get_rule, methods=["GET"]),
    Route("/v1/organization/alert_rules/{rule_id}", organization_alerts.modify_rule, methods=["POST"]),
    Route("/v1/organization/alert_rules/{rule_id}", organization_alerts.delete_rule, methods=["DELETE"]),
    Route("/v1/organization/alert_events", organization_alerts.list_events, methods=["GET"]),
    Route(
        "/v1/organization/alert_events/{event_id}/acknowledge", organization_alerts.acknowledge_event, methods=["POST"]
    ),
    Route("/v1/organization/alert_events/{event_id}/resolve", organization_alerts.resolve_event, methods=["POST"]),
    Route("/v1/organization/auto_top_up", organization_top_up.get_top_up, methods=["GET"]),
    Route("/v1/organization/auto_top_up", organization_top_up.set_top_up, methods=["POST"]),
    Route("/v1/organization/auto_top_up/card", organization_top_up.save_card, methods=["POST"]),
    Route("/v1/organization/notification_settings", organization_webhooks.modify_settings, methods=["POST"]),
    Route("/v1/organization/model_access_requests", organization_controls.list_access_requests, methods=["GET"]),
    Route("/v1/organization/model_access_requests", organization_controls.create_access_request, methods=["POST"]),
    Route(
        "/v1/organization/model_access_requests/{request_id}/approve",
        organization_controls.decide_access_request(True),
        methods=["POST"],
    ),
    Route(
        "/v1/organization/model_access_requests/{request_id}/deny",
        organization_controls.decide_access_request(False),
        methods=["POST"],
    ),
    Route(
        "/v1/organization/projects/{project_id}/api_keys/{key_id}", organization.delete_project_key, methods=["DELETE"]
    ),
    Route("/v1/organization/audit_logs", organization.list_audit_logs, methods=["GET"]),
    Route("/v1/organization/admin_api_keys", organization.list_admin_keys, methods=["GET"]),
    Route("/v1/organization/admin_api_keys", organization.create_admin_key, methods=["POST"]),
    Route("/v1/organization/admin_api_keys/{key_id}", organization.get_admin_key, methods=["GET"]),
    Route("/v1/organization/admin_api_keys/{key_id}", organization.delete_admin_key, methods=["DELETE"]),
    Route("/webhooks/stripe", webhooks.stripe_webhook, methods=["POST"]),
    Route("/admin/users", admin.create_user, methods=["POST"]),
    Route("/admin/users/{user_id}/keys", admin.create_key, methods=["POST"]),
    Route("/admin/users/{user_id}/credits", admin.grant_credits, methods=["POST"]),
    Route("/admin/users/{user_id}", admin.show_user, methods=["GET"]),
    Route("/admin/users/{user_id}", admin.change_user, methods=["PATCH"]),
    Route("/admin/keys", admin.list_keys, methods=["GET"]),
    Route("/admin/keys/{key_id}", admin.revoke_key, methods=["DELETE"]),
    Route("/admin/packages", admin.list_packages, methods=["GET"]),
    Route("/admin/packages", admin.add_package, methods=["POST"]),
    Route("/admin/packages/{package_id}", admin.change_package, methods=["PATCH"]),
    Route("/admin/model-prices", admin.list_prices, methods=["GET"]),
    Route("/admin/model-prices", admin.add_price, methods=["POST"]),
    Route("/admin/model-prices/sync", admin.sync_prices, methods=["POST"]),
    Route("/admin/model-prices/{provider}/{model:path}", admin.change_price, methods=["PATCH"]),
    Route("/dashboard", user_pages.overview, methods=["GET"]),
    Route("/dashboard/sign-in", user_pages.sign_in_page, methods=["GET"]),
    Route("/dashboard/sign-in", user_pages.sign_in, methods=["POST"]),
    Route("/dashboard/sign-out", user_pages.sign_out, methods=["POST"]),
    Route("/dashboard/return", user_pages.checkout_return, methods=["GET"]),
    Route("/dashboard/power-level", user_pages.change_power_level, methods=["POST"]),
    Route("/dashboard/buy", user_pages.buy, methods=["POST"]),
    Route("/dashboard/subscribe", user_pages.subscribe, methods=["POST"]),
    Route("/dashboard/change-tier", user_pages.change_tier, methods=["POST"]),
    Route("/dashboard/keys", key_pages.keys_page, methods=["GET"]),
    Route("/dashboard/keys", key_pages.create_key, methods=["POST"]),
    Route("/dashboard/keys/{key_id}/revoke", key_pages.revoke_key, methods=["POST"]),
    Route("/dashboard/provider-keys", key_pages.add_provider_key, methods=["POST"]),
    Route("/dashboard/provider-keys/{key_id}/delete", key_pages.delete_provider_key, methods=["POST"]),
    Route("/dashboard/usage", user_pages.usage_table, methods=["GET"]),
    Route("/dashboard/usage.csv", user_pages.usage_csv, methods=["GET"]),
    Route("/dashboard/transactions", user_pages.transactions_table, methods=["GET"]),
    Route("/dashboard/sign-up", person_pages.sign_up_page, methods=["GET"]),
    Route("/dashboard/sign-up", person_pages.sign_up, methods=["POST"]),
    Route("/dashboard/sign-in/second-factor", person_pages.second_factor_page, methods=["GET"]),
    Route("/dashboard/sign-in/second-factor", person_pages.second_factor, methods=["POST"]),
    Route("/dashboard/verify-email", person_pages.verify_email_page, methods=["GET"]),
    Route("/dashboard/verify-email", person_pages.verify_email, methods=["POST"]),
    Route("/dashboard/forgot-password", person_pages.forgot_password_page, methods=["GET"]),
    Route("/dashboard/forgot-password", person_pages.forgot_password, methods=["POST"]),
    Route("/dashboard/reset-password", person_pages.reset_password_page, methods=["GET"]),
    Route("/dashboard/reset-password", person_pages.reset_password, methods=["POST"]),
    Route("/dashboard/security", person_pages.security_page, methods=["GET"]),
    Route("/dashboard/security/password", person_pages.change_password, methods=["POST"]),
    Route("/dashboard/security/verification", person_pages.resend_verification, methods=["POST"]),
    Route("/dashboard/security/totp/start", person_pages.start_totp, methods=["POST"]),
    Route("/dashboard/security/totp/confirm", person_pages.confirm_totp, methods=["POST"]),
    Route("/dashboard/security/totp/disable", person_pages.disable_totp, methods=["POST"]),
    Route("/dashboard/security/sessions/end-others", person_pages.end_other_sessions, methods=["POST"]),
    Route("/dashboard/security/sessions/{session_id}/end", person_pages.end_one_session, methods=["POST"]),
    Route("/dashboard/workspaces", team_pages.workspaces_page, methods=["GET"]),
    Route("/dashboard/workspaces", team_pages.create_team, methods=["POST"]),
    Route("/dashboard/workspaces/switch", team_pages.switch_workspace, methods=["POST"]),
    Route("/dashboard/team", team_pages.team_page, methods=["GET"]),
    Route("/dashboard/team/invitations", team_pages.invite, methods=["POST"]),
    Route("/dashboard/team/invitations/{invite_id}/revoke", team_pages.revoke_invite, methods=["POST"]),
    Route("/dashboard/team/members/{person_id}/role", team_pages.change_role, methods=["POST"]),
    Route("/dashboard/team/members/{person_id}/remove", team_pages.remove_member, methods=["POST"]),
    Route("/dashboard/team/projects", team_pages.create_project, methods=["POST"]),
    Route("/dashboard/team/projects/{project_id}/rename", team_pages.rename_project, methods=["POST"]),
    Route("/dashboard/team/projects/{project_id}/archive", team_pages.archive_project, methods=["POST"]),
    Route("/dashboard/team/admin-keys", team_pages.create_admin_key, methods=["POST"]),
    Route("/dashboard/team/admin-keys/{key_id}/delete", team_pages.delete_admin_key, methods=["POST"]),
    Route("/dashboard/notifications", notification_pages.notifications_page, methods=["GET"]),
    Route("/dashboard/notifications/webhooks", notification_pages.create_webhook, methods=["POST"]),
    Route("/dashboard/notifications/webhooks/{webhook_id}", notification_pages.webhook_log, methods=["GET"]),
    Route("/dashboard/notifications/webhooks/{webhook_id}/enable", notification_pages.switch(True), methods=["POST"]),
    Route("/dashboard/notifications/webhooks/{webhook_id}/disable", notification_pages.switch(False), methods=["POST"]),
    Route("/dashboard/notifications/webhooks/{webhook_id}/delete", notification_pages.delete_webhook, methods=["POST"]),
    Route("/dashboard/notifications/webhooks/{webhook_id}/rotate", notification_pages.rotate_secret, methods=["POST"]),
    Route("/dashboard/notifications/webhooks/{webhook_id}/test", notification_pages.send_test, methods=["POST"]),
    Route(
        "/dashboard/notifications/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
        notification_pages.replay,
        methods=["POST"],
    ),
    Route("/dashboard/notifications/settings", notification_pages.save_settings, methods=["POST"]),
    Route("/dashboard/notifications/channels", notification_pages.create_channel, methods=["POST"]),
    Route("/dashboard/notifications/channels/{channel_id}/verify", notification_pages.verify_channel, methods=["POST"]),
    Route("/dashboard/notifications/channels/{channel_id}/test", notification_pages.test_channel, methods=["POST"]),
    Route("/dashboard/notifications/channels/{channel_id}/delete", notification_pages.delete_channel, methods=["POST"]),
    Route("/dashboard/notifications/rules", notification_pages.create_rule, methods=["POST"]),
    Route("/dashboard/notifications/rules/{rule_id}/delete", notification_pages.delete_rule, methods=["POST"]),
    Route(
        "/dashboard/notifications/alerts/{event_id}/acknowledge",
        notification_pages.alert_action(False),
        methods=["POST"],
    ),
    Route(
        "/dashboard/notifications/alerts/{event_id}/resolve", notification_pages.alert_action(True), methods=["POST"]
    ),
    Route("/dashboard/notifications/auto-top-up", notification_pages.save_top_up, methods=["POST"]),
    Route("/dashboard/notifications/auto-top-up/card", notification_pages.save_card, methods=["POST"]),
    Route("/dashboard/controls", control_pages.controls_page, methods=["GET"]),
    Route("/dashboard/controls/budgets", control_pages.create_budget, methods=["POST"]),
    Route("/dashboard/controls/budgets/{budget_id}/delete", control_pages.delete_budget, methods=["POST"]),
    Route("/dashboard/controls/rate-limits", control_pages.create_rate_limit, methods=["POST"]),
    Route("/dashboard/controls/rate-limits/{limit_id}/delete", control_pages.delete_rate_limit, methods=["POST"]),
    Route("/dashboard/controls/model-access", control_pages.ask_for_model, methods=["POST"]),
    Route("/dashboard/controls/model-access/{request_id}/approve", control_pages.approve_request, methods=["POST"]),
    Route("/dashboard/controls/model-access/{request_id}/deny", control_pages.deny_request, methods=["POST"]),
    Route("/dashboard/audit", team_pages.audit_page, methods=["GET"]),
    Route("/dashboard/audit.csv", team_pages.audit_csv, methods=["GET"]),
    Route("/dashboard/invitations/accept", team_pages.accept_page, methods=["GET"]),
    Route("/dashboard/invitations/accept", team_pages.accept, methods=["POST"]),
    Route("/admin/dashboard", admin_pages.overview, methods=["GET"]),
    Route("/admin/dashboard/sign-in", admin_pages.sign_in_page, methods=["GET"]),
    Route("/admin/dashboard/sign-in", admin_pages.sign_in, methods=["POST"]),
    Route("/admin/dashboard/sign-out", admin_pages.sign_out, methods=["POST"]),
    Route("/admin/dashboard/find", admin_pages.find_user, methods=["POST"]),
    Route("/admin/dashboard/workspaces", admin_workspaces.workspaces_page, methods=["GET"]),
    Route("/admin/dashboard/workspaces/{workspace_id}", admin_workspaces.workspace_page, methods=["GET"]),
    Route("/admin/dashboard/audit", admin_workspaces.audit_log_page, methods=["GET"]),
    Route("/admin/dashboard/users/{user_id}", admin_pages.user_page, methods=["GET"]),
    Route("/admin/dashboard/users/{user_id}/usage", admin_pages.user_usage, methods=["GET"]),
    Route("/admin/dashboard/users/{user_id}/transactions", admin_pages.user_transactions, methods=["GET"]),
    Route("/admin/dashboard/users/{user_id}/credits", admin_pages.grant, methods=["POST"]),
    Route("/admin/dashboard/users/{user_id}/tier", admin_pages.change_tier, methods=["POST"]),
    Route("/admin/dashboard/users/{user_id}/power-level", admin_pages.change_power_level, methods=["POST"]),
    Route("/admin/dashboard/users/{user_id}/keys/{key_id}/revoke", admin_pages.revoke_key, methods=["POST"]),
    Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
]


def demo_base_url(host: str, port: int) -> str:
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    return f"http://{reachable}:{port}{MOUNT_PATH}"


# The metered APIs whose prompts may be long (documents, images, audio, many inputs): they get the
# larger body limit.
LARGE_BODY_PATHS = frozenset(
    {
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/completions",
        "/v1/embeddings",
    }
)


def body_limits(settings: Settings) -> Callable[[str], int]:
    """The most bytes a request body may have, by path (InputGuard checks it before reading)."""

    def limit_for(path: str) -> int:
        if path in LARGE_BODY_PATHS or path.startswith(MOUNT_PATH + "/"):
            return settings.max_chat_body_bytes
        if path.startswith("/webhooks/"):
            return settings.max_webhook_body_bytes
        return settings.max_body_bytes

    return limit_for


# The embedded default's catalog sources, synced as it starts: today's models for the providers a
# newcomer may configure next, and for the demo providers that serve them (catalog:provider).
DEFAULT_PRICE_SOURCES = ("openai", "anthropic", "openai:demo", "anthropic:demo-anthropic")


def create_app(settings: Settings, database_url: str, *, port: int | None = None) -> Starlette:
    """The service. With no LEDGER_PROVIDERS it also serves, and routes to, the demo provider (as
    `demo` for OpenAI's APIs and `demo-anthropic` for Anthropic's), and starts with a current price
    catalog (DEFAULT_PRICE_SOURCES)."""
    routes: list[Route | Mount] = list(ROUTES)
    providers = settings.providers
    price_sources: tuple[str, ...] = ()
    if providers is None:
        # one demo app serves both APIs: the gateway posts to {base_url}/messages for anthropic
        # providers, as Anthropic's SDK posts to {base}/v1/messages
        price_sources = DEFAULT_PRICE_SOURCES
        base_url = demo_base_url(settings.host, port or settings.port)
        providers = {
            "demo": ProviderConfig(base_url=base_url, api="openai"),
            "demo-anthropic": ProviderConfig(base_url=base_url, api="anthropic"),
        }
        routes.append(Mount(MOUNT_PATH, app=create_demo_app()))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await create_pool(
            database_url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            command_timeout=settings.db_command_timeout_seconds,
        )
        if price_sources:
            await sync_at_start(pool, price_sources)
        session = open_session()
        services.start(pool, session)
        background: list[asyncio.Task[None]] = []
        if settings.maintenance_interval_seconds > 0:
            background.append(asyncio.create_task(run_forever(pool, settings.maintenance_interval_seconds)))
        if settings.notify_interval_seconds > 0:
            worker = notify_worker.run_forever(
                pool,
                services.cipher or NO_CIPHER,
                services.mailer,
                delivery_policy(settings),
                settings.notify_interval_seconds,
                ChannelPolicy(settings.webhook_allow_private_targets, settings.pagerduty_events_url),
            )
            background.append(asyncio.create_task(worker))
        if services.stripe is not None and settings.notify_interval_seconds > 0:
            # auto top-ups queued by wallets' writes, charged off-session (ledger/billing/auto_top_up.py)
            charger = auto_top_up.run_forever(pool, services.stripe, settings.notify_interval_seconds)
            background.append(asyncio.create_task(charger))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await session.close()
            # settles retried through a database outage get a last chance (else their holds expire
            # with a usage row); bounded so a shutdown never hangs on a dead database
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wait_for_background_writes(), 10)
            services.stop()
            await pool.close()

    # httpx logs every request's URL at INFO: a URL is no place for a secret, but keep it out anyway
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.getLogger(noisy).level, logging.WARNING))
    middleware = [
        Middleware(RequestContext),
        Middleware(InputGuard, limit_for=body_limits(settings), body_timeout=settings.body_read_timeout_seconds),
    ]
    # the dashboards' unknown pages and methods are HTML pages (the API's JSON everywhere else)
    handlers = {**EXCEPTION_HANDLERS, HTTPException: http_error_page}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan, middleware=middleware)
    cipher = cipher_of_settings(*settings.cipher_keys())
    # no configured secret: this process's own (`ledger serve --workers` shares one with its workers)
    session_secret = (
        secrets.token_bytes(32)
        if settings.session_secret is None
        else settings.session_secret.get_secret_value().encode()
    )
    services = Services(
        settings,
        providers,
        Catalog(settings.catalog_ttl_seconds),
        Metrics(),
        stripe_client(settings),
        cipher,
        SessionSigner(session_secret),
        mailer_of_settings(settings),
    )
    app.state.services = services
    return app
