"""The operator's API (Bearer LEDGER_ADMIN_TOKEN): users, gateway keys, credit grants, packages,
model prices: the same operations as the `ledger` CLI."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt
from starlette.requests import Request
from starlette.responses import Response

from api.auth import operator_db, require_admin
from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.params import INT32_MAX, DecimalText, UtcDatetime, parse_body, query_text
from api.services import services
from ledger.billing import packages
from ledger.gateway import keys as gateway_keys
from ledger.gateway import price_catalog, prices
from ledger.money import accounts as users
from ledger.money import credits


class NewUser(BaseModel):
    email: str | None = Field(default=None, max_length=320)
    tier: str = Field(default="trial", min_length=1, max_length=64)
    power_level: str = Field(default="balanced", min_length=1, max_length=64)


class NewKey(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    expires_at: UtcDatetime | None = None


class CreditGrant(BaseModel):
    amount: DecimalText
    transaction_type: Literal["admin_adjustment", "bonus"]
    reference: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    # a grant's terms (ledger/money/grants.py): spent lowest priority first, then earliest expiry
    expires_at: UtcDatetime | None = Field(default=None, description="when what is left expires (no zone: UTC)")
    priority: StrictInt | None = Field(default=None, ge=0, le=100, description="0 spent first; none: 50")


async def create_user(request: Request) -> Response:
    require_admin(request)
    new = await parse_body(request, NewUser)
    async with operator_db(request) as conn:
        user = await users.create_user(conn, new.email, new.tier, new.power_level)
    return LedgerJSONResponse(user, status_code=201)


async def create_key(request: Request) -> Response:
    require_admin(request)
    new = await parse_body(request, NewKey)
    async with operator_db(request) as conn:
        key = await gateway_keys.create_key(conn, request.path_params["user_id"], new.name, new.expires_at)
    return LedgerJSONResponse(
        {"id": key.id, "key": key.key, "prefix": key.prefix, "name": key.name, "expires_at": key.expires_at},
        status_code=201,
    )


async def revoke_key(request: Request) -> Response:
    require_admin(request)
    async with operator_db(request) as conn:
        revoked = await gateway_keys.revoke_key(conn, request.path_params["key_id"])
    if not revoked:
        raise ApiError(404, "No such active key.", code="not_found")
    return LedgerJSONResponse({"id": request.path_params["key_id"], "revoked": True})


async def grant_credits(request: Request) -> Response:
    """A bonus adds credits; an admin_adjustment adds, or removes when its amount is negative."""
    require_admin(request)
    grant = await parse_body(request, CreditGrant)
    async with operator_db(request) as conn:
        result = await credits.adjust_credits(
            conn,
            request.path_params["user_id"],
            grant.amount,
            grant.transaction_type,
            grant.reference,
            grant.description,
            expires_at=grant.expires_at,
            priority=grant.priority,
        )
    if not result.success:
        raise ApiError(
            409,
            f"The balance ({result.new_balance}) cannot cover removing {str(grant.amount)[1:]} credits.",
            code="insufficient_balance",
        )
    return LedgerJSONResponse(
        {"success": result.success, "new_balance": result.new_balance, "transaction_id": result.transaction_id}
    )


class UserChange(BaseModel):
    tier: str | None = Field(default=None, min_length=1, max_length=64)
    power_level: str | None = Field(default=None, min_length=1, max_length=64)


async def show_user(request: Request) -> Response:
    require_admin(request)
    return LedgerJSONResponse(await users.get_account(services(request).pool, request.path_params["user_id"]))


async def change_user(request: Request) -> Response:
    require_admin(request)
    change = await parse_body(request, UserChange)
    pool, user_id = services(request).pool, request.path_params["user_id"]
    async with operator_db(request) as conn:
        if change.tier is not None:
            await users.set_user_tier(conn, user_id, change.tier)
        if change.power_level is not None:
            await users.set_power_level(conn, user_id, change.power_level)
    return LedgerJSONResponse(await users.get_account(pool, user_id))


async def list_keys(request: Request) -> Response:
    require_admin(request)
    rows = await gateway_keys.list_keys(
        services(request).pool, user_id=query_text(request, "user_id"), prefix=query_text(request, "prefix")
    )
    return LedgerJSONResponse({"object": "list", "data": rows})


class NewPackage(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    credits: DecimalText
    price_usd: DecimalText
    discount_percentage: DecimalText = 0
    description: str | None = Field(default=None, max_length=1000)


class PackageChange(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    credits: DecimalText | None = None
    price_usd: DecimalText | None = None
    discount_percentage: DecimalText | None = None
    description: str | None = Field(default=None, max_length=1000)
    stripe_price_id: str | None = Field(default=None, max_length=200)
    sort_order: int | None = Field(default=None, ge=-INT32_MAX - 1, le=INT32_MAX)
    is_active: bool | None = None


class TypePrices(BaseModel):
    """Each token type's own price (None: priced as its parent) and the tiers, by token type."""

    cache_read_usd_per_mtok: DecimalText | None = None
    cache_write_usd_per_mtok: DecimalText | None = None
    cache_write_1h_usd_per_mtok: DecimalText | None = None
    input_audio_usd_per_mtok: DecimalText | None = None
    cache_audio_read_usd_per_mtok: DecimalText | None = None
    input_image_usd_per_mtok: DecimalText | None = None
    cache_image_read_usd_per_mtok: DecimalText | None = None
    reasoning_usd_per_mtok: DecimalText | None = None
    output_audio_usd_per_mtok: DecimalText | None = None
    output_image_usd_per_mtok: DecimalText | None = None
    # {"input": [{"above": 200000, "usd_per_mtok": "6"}], ...}: checked by prices.to_tiers (a nested
    # model would put a $ref the API document does not define into its schema)
    tiers: dict[str, list[dict[str, int | str]]] | None = None


class NewPrice(TypePrices):
    provider: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=200)
    input_usd_per_mtok: DecimalText
    output_usd_per_mtok: DecimalText
    context_window: int = Field(default=128000, gt=0, le=INT32_MAX)
    max_output_tokens: int = Field(default=4096, gt=0, le=INT32_MAX)


class PriceChange(TypePrices):
    """Only the fields given change; a type's price given as null is priced as its parent again."""

    input_usd_per_mtok: DecimalText | None = None
    output_usd_per_mtok: DecimalText | None = None
    context_window: int | None = Field(default=None, gt=0, le=INT32_MAX)
    max_output_tokens: int | None = Field(default=None, gt=0, le=INT32_MAX)
    is_active: bool | None = None


class PriceSync(BaseModel):
    provider: list[str] = Field(default=list(price_catalog.DEFAULT_SOURCES), min_length=1, max_length=20)
    # strict: "yes" or 1 for force (which overwrites operators' prices) is a mistake, not a yes
    dry_run: StrictBool = False
    force: StrictBool = False


def _catalog_changed(request: Request) -> None:
    """Prices and packages take effect at once here (other replicas within the catalog's TTL)."""
    services(request).catalog.invalidate()


async def list_packages(request: Request) -> Response:
    require_admin(request)
    rows = await packages.list_packages(services(request).pool, "all" in request.query_params)
    return LedgerJSONResponse({"object": "list", "data": rows})


async def add_package(request: Request) -> Response:
    require_admin(request)
    new = await parse_body(request, NewPackage)
    async with operator_db(request) as conn:
        row = await packages.add_package(
            conn, new.name, new.credits, new.price_usd, new.discount_percentage, new.description
        )
    return LedgerJSONResponse(row, status_code=201)


async def change_package(request: Request) -> Response:
    require_admin(request)
    change = await parse_body(request, PackageChange)
    async with operator_db(request) as conn:
        row = await packages.change_package(
            conn, request.path_params["package_id"], **change.model_dump(exclude_none=True)
        )
    return LedgerJSONResponse(row)


async def list_prices(request: Request) -> Response:
    require_admin(request)
    rows = await prices.list_prices(services(request).pool, "all" in request.query_params)
    return LedgerJSONResponse({"object": "list", "data": rows})


async def add_price(request: Request) -> Response:
    require_admin(request)
    new = await parse_body(request, NewPrice)
    async with operator_db(request) as conn:
        row = await prices.add_price(
            conn,
            new.provider,
            new.model,
            new.input_usd_per_mtok,
            new.output_usd_per_mtok,
            new.context_window,
            new.max_output_tokens,
            **new.model_dump(include=set(prices.OPTIONAL_PRICES) | {"tiers"}, exclude_none=True),
        )
    _catalog_changed(request)
    return LedgerJSONResponse(row, status_code=201)


async def change_price(request: Request) -> Response:
    require_admin(request)
    change = await parse_body(request, PriceChange)
    given = change.model_dump(exclude_unset=True)
    cleared = sorted(name for name, value in given.items() if value is None and name not in prices.OPTIONAL_PRICES)
    if cleared:
        raise ApiError(400, f"{cleared[0]}: cannot be null", param=cleared[0], code="invalid_request")
    async with operator_db(request) as conn:
        row = await prices.change_price(conn, request.path_params["provider"], request.path_params["model"], **given)
    _catalog_changed(request)
    return LedgerJSONResponse(row)


async def sync_prices(request: Request) -> Response:
    """genai-prices' catalog into model_prices (ledger prices sync): the change report."""
    require_admin(request)
    sync = await parse_body(request, PriceSync)
    async with operator_db(request) as conn:
        report = await price_catalog.sync_prices(conn, sync.provider, force=sync.force, dry_run=sync.dry_run)
    if not sync.dry_run:
        _catalog_changed(request)
    return LedgerJSONResponse(report.as_dict())
