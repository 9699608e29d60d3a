"""The operator's commands: users, gateway keys, credits, packages and model prices."""

from __future__ import annotations

import argparse
import asyncio
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from ledger.accounts.secret_rotation import SecretRotation, rotate_totp_secrets
from ledger.billing import packages
from ledger.cli import controls, notifications, workspaces
from ledger.cli.context import with_connection
from ledger.cli.output import emit
from ledger.db.pool import database_url
from ledger.errors import InvalidArgument
from ledger.gateway import byok, model_limits, price_catalog, prices
from ledger.gateway import keys as gateway_keys
from ledger.money import accounts as users
from ledger.money import credits, grants
from ledger.money.values import to_uuid
from ledger.notify import channels, webhooks
from ledger.settings import Settings

TIERS_HELP = 'JSON: {"input": [{"above": 200000, "usd_per_mtok": "6"}], ...} (a tier\'s price applies above its start)'


def _show(args: argparse.Namespace, value: Any) -> int:
    emit(value, args.json)
    return 0


def cmd_users_create(settings: Settings, args: argparse.Namespace) -> int:
    return _show(
        args, with_connection(settings, lambda db: users.create_user(db, args.email, args.tier, args.power_level))
    )


def cmd_users_show(settings: Settings, args: argparse.Namespace) -> int:
    return _show(args, with_connection(settings, lambda db: users.get_account(db, args.user_id)))


def cmd_users_set_tier(settings: Settings, args: argparse.Namespace) -> int:
    return _show(args, with_connection(settings, lambda db: users.set_user_tier(db, args.user_id, args.tier)))


def cmd_users_set_power_level(settings: Settings, args: argparse.Namespace) -> int:
    return _show(args, with_connection(settings, lambda db: users.set_power_level(db, args.user_id, args.power_level)))


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    key = with_connection(settings, lambda db: gateway_keys.create_key(db, args.user_id, args.name))
    print("the key is shown only now; store it", file=sys.stderr)
    return _show(args, {"id": key.id, "key": key.key, "prefix": key.prefix, "name": key.name})


def cmd_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    return _show(
        args, with_connection(settings, lambda db: gateway_keys.list_keys(db, user_id=args.user, prefix=args.prefix))
    )


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    if not with_connection(settings, lambda db: gateway_keys.revoke_key(db, args.key_id)):
        print(f"ledger: no active key {args.key_id}", file=sys.stderr)
        return 1
    return _show(args, {"id": args.key_id, "revoked": True})


def cmd_prices_limits(_settings: Settings, args: argparse.Namespace) -> int:
    """Refreshes the vendored model limits (ledger/gateway/data/model_limits.json) from LiteLLM."""
    try:
        count = model_limits.refresh(Path(args.source))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        print(f"ledger: cannot read LiteLLM's model table from {args.source}: {exc}", file=sys.stderr)
        return 1
    return _show(args, {"models": count, "written": str(model_limits.DATA)})


def cmd_byok_rotate(settings: Settings, args: argparse.Namespace) -> int:
    """Re-encrypts every stored BYOK key under LEDGER_ENCRYPTION_KEY (read, old ones included,
    from the environment: never from the command line)."""
    cipher = byok.cipher_of_settings(*settings.cipher_keys())
    if cipher is None:
        print("ledger: LEDGER_ENCRYPTION_KEY is not set: there is no key to rotate to", file=sys.stderr)
        return 2

    async def rotate(url: str) -> tuple[byok.RotationReport, SecretRotation, SecretRotation, SecretRotation]:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            # people's TOTP secrets and webhooks' signing secrets are under the same key
            return (
                await byok.rotate_keys(pool, cipher),
                await rotate_totp_secrets(pool, cipher),
                await webhooks.rotate_secret_encryption(pool, cipher),
                await channels.rotate_config_encryption(pool, cipher),
            )
        finally:
            await pool.close()

    with database_url(settings) as url:
        report, totp, hooks, targets = asyncio.run(rotate(url))
    if targets.unreadable:
        print(
            f"ledger: {targets.unreadable} notification channels' targets decrypt under no configured key: their"
            " owners add those channels again",
            file=sys.stderr,
        )
    if hooks.unreadable:
        print(
            f"ledger: {hooks.unreadable} webhooks' signing secrets decrypt under no configured key: their"
            " owners rotate each one's secret (POST /v1/organization/webhooks/{id}/rotate_secret)",
            file=sys.stderr,
        )
    if totp.unreadable:
        print(
            f"ledger: {totp.unreadable} people's two-factor secrets decrypt under no configured key: they must"
            " set up two-factor sign-in again (an operator can turn it off for them)",
            file=sys.stderr,
        )
    if report.unreadable:
        print(
            f"ledger: {report.unreadable} stored keys decrypt under no configured key: add the key they were"
            " stored under to LEDGER_ENCRYPTION_KEYS_OLD and run again, or their owners enter them again",
            file=sys.stderr,
        )
    return _show(
        args,
        {
            "rotated": report.rotated,
            "current": report.current,
            "unreadable": report.unreadable,
            "totp_rotated": totp.rotated,
            "totp_current": totp.current,
            "totp_unreadable": totp.unreadable,
            "webhook_secrets_rotated": hooks.rotated,
            "webhook_secrets_current": hooks.current,
            "webhook_secrets_unreadable": hooks.unreadable,
            "channel_targets_rotated": targets.rotated,
            "channel_targets_current": targets.current,
            "channel_targets_unreadable": targets.unreadable,
        },
    )


def cmd_credits(transaction_type: str) -> Any:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        result = with_connection(
            settings,
            lambda db: credits.adjust_credits(
                db,
                args.user_id,
                args.amount,
                transaction_type,
                args.reference,
                args.reason,
                expires_at=_moment(args.expires_at),
                priority=args.priority,
            ),
        )
        if not result.success:
            print(
                f"ledger: the balance ({result.new_balance}) cannot cover removing {args.amount[1:]} credits",
                file=sys.stderr,
            )
            return 1
        return _show(
            args,
            {"success": result.success, "new_balance": result.new_balance, "transaction_id": result.transaction_id},
        )

    return run


def cmd_grants(settings: Settings, args: argparse.Namespace) -> int:
    wallet = to_uuid(args.user_id, "user_id")
    return _show(args, with_connection(settings, lambda db: grants.grants_of(db, wallet, 1000)))


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"--expires-at must be an ISO time such as 2027-01-31T00:00:00Z, not {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _changes(args: argparse.Namespace, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in fields if getattr(args, name, None) is not None}


# what `change` takes as options (is_active has its own command: deactivate)
PACKAGE_CHANGES = tuple(sorted(packages.PACKAGE_FIELDS - {"is_active"}))
PRICE_CHANGES = tuple(sorted(prices.PRICE_FIELDS - {"is_active"}))
# what `add` takes as options besides its positionals and limits
PRICE_EXTRAS = (*prices.OPTIONAL_PRICES, "tiers")
NULL = "null"  # `change --cache-read-usd-per-mtok null`: priced as its parent again


def cmd_packages_list(settings: Settings, args: argparse.Namespace) -> int:
    return _show(args, with_connection(settings, lambda db: packages.list_packages(db, args.all)))


def cmd_packages_add(settings: Settings, args: argparse.Namespace) -> int:
    return _show(
        args,
        with_connection(
            settings,
            lambda db: packages.add_package(
                db, args.name, args.credits, args.price_usd, args.discount_percentage, args.description
            ),
        ),
    )


def cmd_packages_change(settings: Settings, args: argparse.Namespace) -> int:
    return _show(
        args,
        with_connection(
            settings, lambda db: packages.change_package(db, args.package_id, **_changes(args, PACKAGE_CHANGES))
        ),
    )


def cmd_packages_deactivate(settings: Settings, args: argparse.Namespace) -> int:
    return _show(
        args, with_connection(settings, lambda db: packages.change_package(db, args.package_id, is_active=False))
    )


def cmd_prices_list(settings: Settings, args: argparse.Namespace) -> int:
    return _show(args, with_connection(settings, lambda db: prices.list_prices(db, args.all)))


def cmd_prices_add(settings: Settings, args: argparse.Namespace) -> int:
    return _show(
        args,
        with_connection(
            settings,
            lambda db: prices.add_price(
                db,
                args.provider,
                args.model,
                args.input_usd_per_mtok,
                args.output_usd_per_mtok,
                args.context_window,
                args.max_output_tokens,
                **_changes(args, PRICE_EXTRAS),
            ),
        ),
    )


def cmd_prices_change(settings: Settings, args: argparse.Namespace) -> int:
    return _show(
        args,
        with_connection(
            settings,
            lambda db: prices.change_price(
                db,
                args.provider,
                args.model,
                **{
                    k: None if v == NULL and k in prices.OPTIONAL_PRICES else v
                    for k, v in _changes(args, PRICE_CHANGES).items()
                },
            ),
        ),
    )


def cmd_prices_deactivate(settings: Settings, args: argparse.Namespace) -> int:
    return _show(
        args,
        with_connection(settings, lambda db: prices.change_price(db, args.provider, args.model, is_active=False)),
    )


def cmd_prices_sync(settings: Settings, args: argparse.Namespace) -> int:
    report = with_connection(
        settings,
        lambda db: price_catalog.sync_prices(
            db, args.provider or price_catalog.DEFAULT_SOURCES, force=args.force, dry_run=args.dry_run
        ),
    )
    if args.json:
        emit(report.as_dict(), True)
        return 0
    print(f"{'dry run, nothing written: ' if report.dry_run else ''}{report.counts()} ({report.synced_from})")
    for entry in report.added:
        print(f"added    {entry['provider']}/{entry['model']}")
    for entry in report.updated:
        changes = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in entry["changes"].items())
        print(f"updated  {entry['provider']}/{entry['model']}: {changes}")
    for entry in report.kept:
        print(f"kept     {entry['provider']}/{entry['model']}: {entry['reason']} (--force overwrites)")
    for entry in report.skipped:
        print(f"skipped  {entry['source']} {entry['model']}: {entry['reason']}")
    return 0


def _group(commands: Any, name: str, help_text: str) -> Any:
    return commands.add_parser(name, help=help_text).add_subparsers(dest=f"{name}_command", required=True)


def _command(group: Any, name: str, help_text: str, func: Any, json_flag: argparse.ArgumentParser) -> Any:
    parser = group.add_parser(name, help=help_text, parents=[json_flag])
    parser.set_defaults(func=func)
    return parser


def add_commands(commands: Any) -> None:
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON instead of a table")

    group = _group(commands, "users", "accounts")
    create = _command(group, "create", "create an account", cmd_users_create, json_flag)
    create.add_argument("--email")
    create.add_argument("--tier", default="trial")
    create.add_argument("--power-level", default="balanced")
    _command(group, "show", "balance, allowance, quota, tier, power level", cmd_users_show, json_flag).add_argument(
        "user_id"
    )
    tier = _command(group, "set-tier", "set the tier (and its monthly allowance)", cmd_users_set_tier, json_flag)
    tier.add_argument("user_id")
    tier.add_argument("tier")
    level = _command(group, "set-power-level", "set the default power level", cmd_users_set_power_level, json_flag)
    level.add_argument("user_id")
    level.add_argument("power_level")

    workspaces.add_commands(commands, json_flag)
    controls.add_commands(commands, json_flag)
    notifications.add_commands(commands, json_flag)

    group = _group(commands, "keys", "gateway API keys")
    key = _command(group, "create", "create a key (shown once)", cmd_keys_create, json_flag)
    key.add_argument("user_id")
    key.add_argument("--name")
    listing = _command(group, "list", "list keys, by owner or by the prefix people see", cmd_keys_list, json_flag)
    listing.add_argument("--user")
    listing.add_argument("--prefix")
    _command(group, "revoke", "revoke a key", cmd_keys_revoke, json_flag).add_argument("key_id")

    group = _group(commands, "byok", "users' own provider keys, encrypted at rest")
    _command(
        group,
        "rotate",
        "re-encrypt every stored key under LEDGER_ENCRYPTION_KEY (old keys: LEDGER_ENCRYPTION_KEYS_OLD)",
        cmd_byok_rotate,
        json_flag,
    )

    group = _group(commands, "credits", "credit grants, recorded with their reason")
    for name, kind, help_text in (
        ("bonus", "bonus", "add promotional credits"),
        ("adjust", "admin_adjustment", "add, or with a negative amount remove, credits"),
    ):
        grant = _command(group, name, help_text, cmd_credits(kind), json_flag)
        grant.add_argument("user_id")
        grant.add_argument("amount", help="a decimal number of credits")
        grant.add_argument("--reason", required=True, help="recorded as the transaction's description")
        grant.add_argument("--reference", help="makes the grant idempotent: one reference is applied once")
        grant.add_argument("--expires-at", help="ISO time (UTC if no zone) when what is left of it expires")
        grant.add_argument("--priority", type=int, help="0 (spent first) to 100; default 50")

    lots = _command(
        group, "grants", "a wallet's grants: what is left of each and when it expires", cmd_grants, json_flag
    )
    lots.add_argument("user_id", help="the wallet (a workspace's id)")

    group = _group(commands, "packages", "credit packages")
    _command(group, "list", "packages on sale (--all: with inactive)", cmd_packages_list, json_flag).add_argument(
        "--all", action="store_true"
    )
    add = _command(group, "add", "add a package", cmd_packages_add, json_flag)
    add.add_argument("name")
    add.add_argument("credits")
    add.add_argument("price_usd")
    add.add_argument("--discount-percentage", default="0")
    add.add_argument("--description")
    change = _command(group, "change", "change a package", cmd_packages_change, json_flag)
    change.add_argument("package_id")
    for field in PACKAGE_CHANGES:
        change.add_argument(f"--{field.replace('_', '-')}", type=int if field == "sort_order" else str)
    _command(group, "deactivate", "take a package off sale", cmd_packages_deactivate, json_flag).add_argument(
        "package_id"
    )

    group = _group(commands, "prices", "model prices (USD per 1M tokens)")
    _command(group, "list", "active prices (--all: with inactive)", cmd_prices_list, json_flag).add_argument(
        "--all", action="store_true"
    )
    add = _command(group, "add", "price a model at a provider", cmd_prices_add, json_flag)
    for positional in ("provider", "model", "input_usd_per_mtok", "output_usd_per_mtok"):
        add.add_argument(positional)
    add.add_argument("--context-window", type=int, default=128000)
    add.add_argument("--max-output-tokens", type=int, default=4096)
    for field in PRICE_EXTRAS:
        add.add_argument(f"--{field.replace('_', '-')}", help=TIERS_HELP if field == "tiers" else None)
    change = _command(group, "change", "change a model's price or limits", cmd_prices_change, json_flag)
    change.add_argument("provider")
    change.add_argument("model")
    for field in PRICE_CHANGES:
        change.add_argument(
            f"--{field.replace('_', '-')}",
            type=int if field.endswith(("window", "tokens")) else str,
            help=TIERS_HELP
            if field == "tiers"
            else f"`{NULL}`: priced as its parent"
            if field in prices.OPTIONAL_PRICES
            else None,
        )
    deactivate = _command(group, "deactivate", "stop serving a model at a provider", cmd_prices_deactivate, json_flag)
    deactivate.add_argument("provider")
    deactivate.add_argument("model")
    sync = _command(
        group,
        "sync",
        "import or update prices from genai-prices' catalog; rows an operator changed are kept unless --force",
        cmd_prices_sync,
        json_flag,
    )
    sync.add_argument(
        "--provider",
        action="append",
        help="a catalog provider, or CATALOG:NAME to price provider NAME from it "
        "(repeatable; default: openai, anthropic)",
    )
    sync.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    limits = _command(
        group,
        "limits",
        "refresh the models' output limits from LiteLLM's model table (its JSON file, or a litellm wheel)",
        cmd_prices_limits,
        json_flag,
    )
    limits.add_argument("source", help="model_prices_and_context_window.json, or litellm-*.whl (pip download litellm)")
    sync.add_argument("--force", action="store_true", help="overwrite rows an operator changed or the seed wrote")
