"""The metered engine: one pipeline for every metered API, driven by that API's adapter.

authenticate + hold -> route -> forward -> meter -> settle (or fail), in two SQL round trips:

1. `begin_request` finds the gateway key's owner and holds the most the request can cost at
   their power level, before any upstream call; not enough credits is InsufficientCredits (402)
   and no upstream is called. The max_tokens each upstream receives is the one its hold was
   computed for. (A user with their own provider keys takes one more round trip: the routes, and
   so the hold, depend on keys only this process can decrypt.)
2. Providers are tried in routing order; connect errors, timeouts, 429s and 5xx fall over.
3. `finish_request` settles the actual cost, writes the usage row and counts a BYOK key's use.
   The upstream's usage is believed only within the bounds the request implies
   (ledger.gateway.tokens.bounded_usage); what falls outside is charged at the bound and recorded
   as an anomaly. The charge never exceeds the hold. A failure before anything was delivered
   releases the hold and logs the failure, charging nothing.

Refusals are LedgerError subclasses; the API renders them in its own shape. Nothing here knows
HTTP servers: an answer is a `Completion`, an `UpstreamAnswer` passed through, or a `MeteredEvents`
stream whose `finish` the server must call however the stream ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Protocol

import aiohttp
import anyio

from ledger.controls.end_users import end_user_of
from ledger.controls.refusals import limit_headers, refusal_error, remaining_of
from ledger.db.background import CONNECTION_ERRORS, retry_in_background
from ledger.db.executor import Executor
from ledger.errors import (
    InsufficientCredits,
    InvalidPowerLevel,
    KeyForbidden,
    LedgerError,
    ModelNotFound,
    ProviderKeyRejected,
    Unauthenticated,
    UpstreamFailed,
    UpstreamTimedOut,
)
from ledger.gateway import byok, per_call_fees
from ledger.gateway.catalog import Catalog, CatalogSnapshot, PowerLevel
from ledger.gateway.keys import KEY_PREFIX, KeyOwner, authenticate, hash_key
from ledger.gateway.per_call_fees import per_call_fee
from ledger.gateway.pricing import TokenCounts
from ledger.gateway.routing import Route, Tariff, plan_routes, prompt_tokens_on
from ledger.gateway.tokens import CountedUsage, TokenBounds, UsageFields, bounded_usage, upstream_json, words
from ledger.gateway.upstream import (
    COMPLETION_STATUSES,
    TRANSPORT_ERRORS,
    AllProvidersFailed,
    LostAfterSending,
    UpstreamBodyTooLarge,
    UpstreamResponse,
    failure_name,
    finite,
    open_first,
    sse_lines,
)
from ledger.metrics import Metrics
from ledger.money.holds import Reservation
from ledger.money.usage import (
    Charge,
    UsageRecord,
    begin_request,
    extend_hold,
    fail_request,
    finish_request,
    reserve_request,
)
from ledger.settings import ProviderConfig, Settings

log = logging.getLogger("ledger.proxy")


class StreamMeter(Protocol):
    """Follows one API's event stream: what to forward of each event, the usage, the text."""

    usage: Any
    chunks: int
    skipped: int
    # the provider's own error, reported inside the stream (an error event or chunk), or None
    provider_error: str | None

    def event(self, lines: list[str]) -> bytes | None: ...

    @property
    def generated_text(self) -> str: ...

    @property
    def words(self) -> int: ...

    def closing_events(self, counts: TokenCounts, cost: str, wants_usage: bool) -> bytes:
        """What the client gets once the stream is settled: what the meter held back (the usage,
        with the counts and cost charged) and the stream's end."""
        ...

    def unfinished(self) -> str | None:
        """Why the stream did not end the way its API ends a successful one (the provider's error
        event, no final event), or None. Such a request is still billed, but logged as failed."""
        ...


class MeteredCall(Protocol):
    """One parsed request of a metered API, as its adapter sees it."""

    @property
    def body(self) -> dict[str, Any]:
        """The request's JSON body as the client sent it."""
        ...

    @property
    def model(self) -> str: ...

    @property
    def stream(self) -> bool: ...

    @property
    def wants_usage(self) -> bool: ...

    @property
    def description(self) -> str: ...

    @property
    def endpoint(self) -> str:
        """The API the request came in by, for the usage row: chat, responses, embeddings, ..."""
        ...

    @property
    def provider_api(self) -> str:
        """The API a provider must speak to serve it: openai or anthropic."""
        ...

    @property
    def headers(self) -> dict[str, str]:
        """Headers of the client's passed on to the provider (anthropic-version)."""
        ...

    @property
    def prompts(self) -> int:
        """How many prompts the request carries, each within the model's context window on its
        own (an embeddings request's inputs, a legacy completion's prompts); 1 for a conversation."""
        ...

    @property
    def token_types(self) -> frozenset[str]:
        """The token types its API's usage can report (its usage_fields' keys): the hold prices a
        token at the dearest of these, since the others always count 0."""
        ...

    def prompt_upper_bound(self) -> int: ...

    def most_completion_tokens(self, route: Route) -> int:
        """The most output tokens the request lets `route` generate (the hold's and the bounds')."""
        ...

    def bounds(self, route: Route, completion_floor: int, reply_text: str) -> TokenBounds: ...

    def upstream_request(self, route: Route) -> tuple[str, bytes]: ...

    def usage_fields(self, reported: Any) -> UsageFields: ...

    def read_answer(self, payload: dict[str, Any]) -> list[str]: ...

    def charged_answer(
        self, payload: dict[str, Any], reported: Any, counts: TokenCounts, cost: str
    ) -> dict[str, Any]: ...

    def stream_meter(self) -> StreamMeter: ...

    def stream_error(self, message: str, code: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole answer, its usage the charged one."""

    payload: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    """The provider's own refusal of the request (a 4xx of its own), passed through; nothing charged."""

    status_code: int
    content: bytes
    content_type: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class MeteredEvents:
    """A stream for the client. `events` may raise a LedgerError before its first chunk (nothing
    was committed: answer that error instead). `finish(client_left)` must run once however the
    stream ends; `keepalive` every `keepalive_every` seconds while it lives; a client that reads
    nothing for `send_timeout` seconds is to be cut."""

    events: AsyncGenerator[bytes, None]
    finish: Callable[[bool], Awaitable[None]]
    headers: dict[str, str]
    keepalive: Callable[[], Awaitable[None]] | None
    keepalive_every: float
    send_timeout: float


Outcome = Completion | UpstreamAnswer | MeteredEvents

# Where each metered API's non-streamed answer carries what it generated: chat and legacy
# completions' `choices`, Responses' `output`, Messages' `content`, embeddings' `data`.
COMPLETION_KEYS = frozenset({"choices", "output", "content", "data"})


def credit_headers(request_id: str, charge: Charge) -> dict[str, str]:
    remaining = "unlimited" if charge.available is None else str(charge.available)
    if charge.pending:
        remaining = "pending"
    return {"x-request-id": request_id, "x-credits-charged": str(charge.charged), "x-credits-remaining": remaining}


class Gateway:
    """What the engine needs: the pool, the upstream session, settings, providers, catalog,
    the BYOK cipher and the metrics. One per process."""

    def __init__(
        self,
        pool: Executor,
        session: aiohttp.ClientSession,
        settings: Settings,
        providers: dict[str, ProviderConfig],
        catalog: Catalog,
        cipher: byok.KeyCipher | None,
        metrics: Metrics,
    ) -> None:
        self.pool = pool
        self.session = session
        self.settings = settings
        self.providers = providers
        self.catalog = catalog
        self.cipher = cipher
        self.metrics = metrics

    async def owner(self, key: str) -> KeyOwner:
        """The key's owner, or Unauthenticated."""
        owner = await authenticate(self.pool, key)
        if owner is None:
            raise unauthenticated()
        return owner

    async def refuse_after_authenticating(self, key: str, refusal: Exception) -> None:
        """A request refused for its content is still told first when its key is wrong."""
        await self.owner(key)
        raise refusal

    async def serve(
        self, key: str, call: MeteredCall, power_level: str | None, request_id: str, client_ip: str | None = None
    ) -> Outcome:
        """Meters one request end to end; raises a LedgerError for a refusal. Every answer, a
        refusal too, carries the rate-limit headers of the limits over the request."""
        snapshot = await self.catalog.get(self.pool)
        if power_level is not None and power_level not in snapshot.power_levels:
            await self.refuse_after_authenticating(key, unknown_level(power_level, snapshot))
        try:
            end_user = end_user_of(call.body, call.provider_api)
        except LedgerError as refused:
            await self.refuse_after_authenticating(key, refused)
            raise
        request = MeteredRequest(self, call, request_id, end_user, client_ip)
        try:
            await request.begin(key, snapshot, power_level)
            outcome = await request.forward()
        except LedgerError as refused:
            refused.headers = {**request.limit_headers, **refused.headers}
            raise
        if not request.limit_headers:
            return outcome
        return dataclasses.replace(outcome, headers={**request.limit_headers, **outcome.headers})


def unauthenticated() -> Unauthenticated:
    return Unauthenticated("Incorrect API key provided, or the key was revoked or has expired.")


def unknown_level(name: str, snapshot: CatalogSnapshot) -> InvalidPowerLevel:
    known = ", ".join(sorted(snapshot.power_levels))
    return InvalidPowerLevel(f"Unknown power level '{name}'. Known: {known}.")


class MeteredRequest:
    """One request's journey from its hold to its settlement."""

    def __init__(
        self,
        gateway: Gateway,
        call: MeteredCall,
        request_id: str,
        end_user: str | None = None,
        client_ip: str | None = None,
    ) -> None:
        self.gateway = gateway
        self.pool = gateway.pool
        self.settings = gateway.settings
        self.metrics = gateway.metrics
        self.call = call
        self.request_id = request_id
        self.routes: list[Route] = []
        self.tariff = Tariff(self.settings.usd_per_credit, Decimal(1), self.settings.byok_fee_ratio)
        self.hold_id: uuid.UUID | None = None
        self.held = Decimal(0)
        self.ended = False  # settled or failed: a request ends once
        self.started = time.monotonic()  # reset when the request goes upstream
        self.usage = UsageRecord(request_id=request_id, model=call.model, api=call.endpoint, end_user=end_user)
        self.counts = TokenCounts()  # what was charged, once settled
        self.prompt_bound = call.prompt_upper_bound()
        self.client_ip = client_ip
        self.key_id: uuid.UUID | None = None
        # the rate-limit headers of the limits over the request (and soft budgets it passed)
        self.limit_headers: dict[str, str] = {}
        self.allowed_providers: list[str] | None = None  # the key's restriction (None: any)

    def _elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.hold_ttl_seconds)

    def _tariff(self, level: PowerLevel) -> Tariff:
        return Tariff(self.settings.usd_per_credit, Decimal(level.cost_multiplier), self.settings.byok_fee_ratio)

    def _most(self, tariff: Tariff, routes: list[Route]) -> Decimal:
        call = self.call
        return tariff.most_it_can_cost(
            routes, self.prompt_bound, call.most_completion_tokens, call.prompts, call.token_types
        )

    def _facts(self, routes: list[Route]) -> dict[str, Any]:
        """What the controls judge the request by (ledger_check_controls): its model, end user,
        client address, providers, and its token bound (the most tokens any route may count)."""
        call = self.call
        tokens = max(
            (prompt_tokens_on(r, self.prompt_bound, call.prompts) + call.most_completion_tokens(r) for r in routes),
            default=0,
        )
        return {
            "model": call.model,
            "end_user": self.usage.end_user,
            "client_ip": self.client_ip,
            "tokens": tokens,
            "providers": sorted({route.provider for route in routes}),
        }

    def _controlled(self, hold_state: str, controls: dict[str, Any] | None) -> None:
        """Takes the controls' headers, and raises the refusal of a control that refused."""
        self.limit_headers = limit_headers(controls, self.call.provider_api)
        if controls and controls.get("requests"):
            self.usage.rate_limit_remaining = remaining_of(controls["requests"])
        if hold_state in ("forbidden", "budget", "rate_limit") and controls is not None:
            self.metrics.control_refusals.labels("key_restriction" if hold_state == "forbidden" else hold_state).inc()
            raise refusal_error(hold_state, controls, self.limit_headers)

    def _allowed(self, routes: list[Route], allowed: list[str] | None) -> list[Route]:
        return routes if allowed is None else [route for route in routes if route.provider in allowed]

    def _no_allowed_provider(self, where: str = "") -> KeyForbidden:
        return KeyForbidden(
            f"This API key may only use the providers {', '.join(self.allowed_providers or [])}, and none"
            f" of them serves '{self.call.model}'{where}.",
            code="provider_not_allowed",
        )

    async def begin(self, key: str, snapshot: CatalogSnapshot, power_level: str | None) -> None:
        """Authenticate and hold the most the request can cost, under the key's restrictions and
        the workspace's budgets and rate limits, in one round trip. A user who cannot afford the
        platform's providers but holds BYOK keys is still served, by their own keys' providers only."""
        gateway = self.gateway
        levels = [power_level] if power_level is not None else list(snapshot.power_levels)
        plans = {
            name: plan_routes(
                snapshot, gateway.providers, self.call.model, snapshot.power_levels[name], {}, self.call.provider_api
            )
            for name in levels
        }
        if not any(plans.values()):  # which providers serve a model does not depend on the level
            owner = await gateway.owner(key)
            if (power_level or owner.power_level) not in snapshot.power_levels:
                raise unknown_level(owner.power_level, snapshot)
            if per_call_fee(self.call.model):
                raise ModelNotFound(f"The model '{self.call.model}' is not served here: {per_call_fees.REFUSAL}.")
            raise ModelNotFound(
                f"The model '{self.call.model}' does not exist or no configured provider serves it"
                f" through this API ({self.call.provider_api} {self.call.endpoint})."
            )
        holds = {
            name: (
                self._most(self._tariff(snapshot.power_levels[name]), routes),
                snapshot.power_levels[name].cost_multiplier,
            )
            for name, routes in plans.items()
        }
        begun = None
        facts = self._facts([route for routes in plans.values() for route in routes])
        if key.startswith(KEY_PREFIX):
            begun = await begin_request(
                self.pool,
                hash_key(key),
                power_level,
                holds,
                gateway.cipher is not None,
                self.ttl,
                self.call.description,
                self.usage,
                facts,
            )
        if begun is None:
            raise unauthenticated()
        usage = self.usage
        usage.user_id, usage.gateway_key_id, usage.power_level = begun.user_id, begun.key_id, begun.power_level
        self.key_id = begun.key_id
        self._controlled(begun.hold_state, begun.controls)
        self.allowed_providers = begun.allowed_providers
        level = snapshot.power_levels.get(begun.power_level)
        if level is None:  # the user's own level is no longer active
            raise unknown_level(begun.power_level, snapshot)
        self.tariff = self._tariff(level)
        usage.cost_multiplier = self.tariff.multiplier
        if begun.hold_state == "byok":
            await self._begin_with_own_keys(snapshot, level, begun.own_keys)
            return
        self.routes = self._allowed(plans[level.name], begun.allowed_providers)
        self._hold_taken(begun.reservation, holds[level.name][0])
        if not self.routes:  # the database found an allowed provider among every level's routes
            await self.fail(403, "no provider the key allows serves the model at its power level")
            raise self._no_allowed_provider(f" at the power level '{level.name}'")

    async def _begin_with_own_keys(
        self, snapshot: CatalogSnapshot, level: PowerLevel, encrypted: list[dict[str, Any]]
    ) -> None:
        assert self.gateway.cipher is not None and self.usage.user_id is not None
        own = byok.usable_keys(self.gateway.cipher, self.usage.user_id, encrypted)
        self.routes = self._allowed(
            plan_routes(snapshot, self.gateway.providers, self.call.model, level, own, self.call.provider_api),
            self.allowed_providers,
        )
        if not self.routes:
            raise self._no_allowed_provider()
        reservation, most = await self._hold(self.routes)
        own_keys = [route for route in self.routes if route.is_byok]
        if reservation is not None and not reservation.success and own_keys and own_keys != self.routes:
            self.routes = own_keys
            reservation, most = await self._hold(own_keys)
        self._hold_taken(reservation, most)

    def _hold_taken(self, reservation: Reservation | None, most: Decimal) -> None:
        """`most`: what the reservation was asked to hold (the most the request can cost)."""
        if reservation is None:
            return  # nothing can be charged: nothing to hold
        if not reservation.success:
            self.metrics.insufficient.inc()
            raise InsufficientCredits(
                f"Insufficient credits: this request can cost up to {most} credits and "
                f"{reservation.available} are available. Buy credits or lower max_tokens.",
                headers={"x-should-retry": "false"},
            )
        self.hold_id = reservation.hold_id
        self.held = most

    async def _hold(self, routes: list[Route]) -> tuple[Reservation | None, Decimal]:
        """The hold on `routes` (the user's own keys' among them), under the same controls."""
        most = self._most(self.tariff, routes)
        assert self.key_id is not None
        held = await reserve_request(
            self.pool, self.key_id, most, self.ttl, self.call.description, self.usage, self._facts(routes)
        )
        self._controlled(held.hold_state, held.controls)
        return held.reservation, most

    async def keep_hold(self) -> None:
        """Keeps the hold open while the request lives (called every third of the hold's TTL)."""
        if self.hold_id is None or self.ended:
            return
        if not await extend_hold(self.pool, self.hold_id, self.ttl):
            log.warning("hold %s of %s was no longer open to extend", self.hold_id, self.request_id)

    async def _keep_hold_every_third_of_its_ttl(self) -> None:
        while True:
            await asyncio.sleep(self.settings.hold_ttl_seconds / 3)
            try:
                await self.keep_hold()
            except Exception:
                log.exception("could not extend the hold of %s; trying again next time", self.request_id)

    async def fail(self, status_code: int, error: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.usage.latency_ms = self._elapsed_ms()
        self.usage.status_code = status_code
        self.usage.error_message = error[:1000]
        self.usage.success = False
        hold_id, usage = self.hold_id, self.usage
        with anyio.CancelScope(shield=True):
            try:
                await fail_request(self.pool, hold_id, usage)
            except CONNECTION_ERRORS as exc:
                log.warning("releasing %s lost the database (%s); retrying", self.request_id, type(exc).__name__)
                retry_in_background(
                    f"release of {self.request_id}",
                    lambda: fail_request(self.pool, hold_id, usage),
                    give_up_after=self.settings.hold_ttl_seconds,
                )
        self.metrics.request_done(self.call.model, self.usage.provider, status_code, Decimal(0), None)

    async def settle(self, route: Route, reported: Any, reply_text: str, delivered_words: int) -> Charge:
        """Charge what the request used, within its bounds and never above its hold; always ends
        with one usage row and the hold settled or released (or, if the database is down, a
        settle retried in the background: the Charge says `pending`)."""
        self.ended = True
        bounds = self.call.bounds(route, delivered_words, reply_text)
        counted = bounded_usage(reported, self.call.usage_fields(reported), bounds)
        if counted.anomaly:
            self.metrics.usage_anomalies.labels(route.provider).inc()
            log.warning("usage anomaly on %s from %s: %s", self.request_id, route.provider, counted.anomaly)
        usd = self.tariff.usd(route, counted.counts)
        credits = self.tariff.credits(route, usd)
        if self.hold_id is None:
            credits = Decimal(0)
        elif credits > self.held:  # cannot happen while the hold and the bounds agree; kept as a fuse
            counted = CountedUsage(
                counted.counts,
                "; ".join(filter(None, [counted.anomaly, f"cost {credits} above the hold {self.held}"])),
                counted.reported,
            )
            credits = self.held
        usage = self.usage
        self.counts = counted.counts
        usage.count(counted.counts.as_dict())
        usage.cost_usd = usd
        usage.usage_anomaly, usage.reported_usage = counted.anomaly, counted.reported
        usage.cost_multiplier = self.tariff.multiplier_for(route)
        usage.latency_ms = self._elapsed_ms()
        usage.status_code = usage.status_code or 200
        hold_id = self.hold_id
        own_key = route.byok_key.id if route.byok_key is not None else None
        with anyio.CancelScope(shield=True):
            try:
                charge = await finish_request(self.pool, hold_id, credits, usage, own_key)
            except CONNECTION_ERRORS as exc:
                log.warning("settling %s lost the database (%s); retrying", self.request_id, type(exc).__name__)
                retry_in_background(
                    f"settle of {self.request_id}",
                    lambda: finish_request(self.pool, hold_id, credits, usage, own_key),
                    give_up_after=self.settings.hold_ttl_seconds,
                )
                charge = Charge(credits, Decimal(0), Decimal(0), None, None, pending=True)
            except Exception:
                log.exception("settling %s failed; releasing its hold instead", self.request_id)
                usage.success, usage.error_message = False, "the settle failed; nothing was charged"
                try:
                    await fail_request(self.pool, hold_id, usage)
                except Exception:
                    log.exception("releasing %s failed too; its hold's expiry writes its usage row", self.request_id)
                charge = Charge(Decimal(0), Decimal(0), Decimal(0), None, None, pending=True)
        self.metrics.request_done(
            self.call.model, route.provider, usage.status_code or 200, charge.charged, usage.latency_ms / 1000
        )
        return charge

    async def forward(self) -> Outcome:
        self.started = time.monotonic()  # latency is the upstream's: from the first attempt to the answer's end
        # the hold must outlive a slow upstream too (a provider timeout above the hold's TTL)
        keeping = asyncio.create_task(self._keep_hold_every_third_of_its_ttl())
        try:
            route, response = await open_first(
                self.gateway.session,
                self.routes,
                self.call.upstream_request,
                stream=self.call.stream,
                max_body=self.settings.max_upstream_body_bytes,
                headers=self.call.headers,
            )
        except LostAfterSending as exc:
            self.usage.provider, self.usage.is_byok = exc.route.provider, exc.route.is_byok
            raise await self._lost_after_sending(exc) from None
        except UpstreamBodyTooLarge as exc:
            self.usage.provider, self.usage.is_byok = exc.route.provider, exc.route.is_byok
            raise await self._upstream_failure(
                str(exc),
                "The provider's answer was larger than this gateway reads.",
                "upstream_invalid_response",
            ) from None
        except AllProvidersFailed as exc:
            # no route answered: the row is the user's own keys' when those were all it had
            self.usage.is_byok = bool(self.routes) and all(route.is_byok for route in self.routes)
            redirected = exc.status_code is not None and exc.status_code < 400  # a 1xx or 3xx, last
            raise await self._upstream_failure(
                f"all providers failed: {exc}",
                f"No provider could serve the request ({exc}).",
                "upstream_invalid_response" if redirected else "upstream_unavailable",
            ) from None
        except BaseException:
            await self.fail(500, "request aborted before an upstream answered")
            raise
        finally:
            keeping.cancel()
        self.usage.provider, self.usage.is_byok = route.provider, route.is_byok
        if response.status_code in (401, 403) and route.is_byok:
            await self.fail(response.status_code, f"{route.provider} refused the user's own key")
            raise ProviderKeyRejected(
                f"{route.provider} refused your own API key (HTTP {response.status_code}). Update it"
                " with POST /v1/provider-keys or delete it to use the platform's. Nothing was charged."
            )
        if response.status_code >= 400:
            await self.fail(response.status_code, response.text)
            return UpstreamAnswer(
                response.status_code,
                response.content,
                response.headers.get("content-type", "application/json"),
                {"x-request-id": self.request_id},
            )
        if response.status_code not in COMPLETION_STATUSES:
            raise await self._not_a_completion(route, response)
        if self.call.stream:
            return await self._stream(route, response)
        return await self._complete(route, response)

    async def _lost_after_sending(self, lost: LostAfterSending, reported: Any = None) -> UpstreamFailed:
        """The request reached the provider and its answer never came: the provider may have
        generated it and billed for it. The prompt is charged (its estimate, as for a client that
        leaves a stream before any chunk: settle with no text and the usage `reported` so far, if
        any), the usage row says so, and the client is told not to retry (x-should-retry: false):
        a retry would run it again."""
        route = lost.route
        timed_out = lost.timed_out
        status = 504 if timed_out else 502
        usage = self.usage
        usage.success, usage.status_code = False, status
        usage.error_message = (
            f"{route.provider}: {lost.failure} after the request was sent; it may have generated and billed"
            " the answer: the prompt was charged (its estimate), no other provider was tried"
        )
        charge = await self.settle(route, reported, "", 0)
        what = "did not answer in time" if timed_out else f"failed ({lost.failure})"
        message = (
            f"The provider {what} after it received the request, and may have generated the answer."
            f" The prompt was charged ({charge.charged} credits); do not retry blindly: a retry runs it again."
        )
        headers = {**credit_headers(self.request_id, charge), "x-should-retry": "false"}
        if timed_out:
            return UpstreamTimedOut(message, code="upstream_timeout", headers=headers)
        return UpstreamFailed(message, code="upstream_connection_lost", headers=headers)

    async def _not_a_completion(self, route: Route, response: UpstreamResponse) -> UpstreamFailed:
        """A 2xx other than 200/201 (202 Accepted, 203, 204, 206 ...): not an answer of the API, so
        a 502 charged nothing. But the provider took the request (it may be working on it), so no
        other provider is tried and the client is told not to retry (x-should-retry: false)."""
        await response.aclose()
        return await self._upstream_failure(
            f"{route.provider} answered HTTP {response.status_code}, not a completion",
            f"The provider answered HTTP {response.status_code}, not a completion.",
            "upstream_invalid_response",
            provider_took_it=True,
        )

    async def _upstream_failure(
        self, reason: str, message: str, code: str, *, provider_took_it: bool = False
    ) -> UpstreamFailed:
        """The provider failed before anything reached the client: the hold is released, a failed
        usage row (502, `reason`) written, and the client gets a 502 saying nothing was charged.
        `provider_took_it`: the provider accepted the request (it may be working on it), so the
        SDKs are told not to retry it (x-should-retry: false): a retry would run it again."""
        await self.fail(502, reason)
        headers = {"x-should-retry": "false"} if provider_took_it else None
        return UpstreamFailed(f"{message} Nothing was charged.", code=code, headers=headers)

    async def _not_a_stream(self, route: Route, response: UpstreamResponse, what: str) -> UpstreamFailed:
        """A streamed request the provider did not answer with an SSE stream of its API (an empty
        body, HTML, a plain JSON completion from a provider that ignores `stream`): nothing reached
        the client, so it is a 502 and nothing is charged. The provider took the request (and a
        plain completion was generated): a retry would run it again, so the SDKs are told not to
        (x-should-retry: false), as for any answer that may have cost the provider work."""
        await response.aclose()
        return await self._upstream_failure(
            f"{route.provider} answered a streamed request with {what}",
            f"The provider answered the streamed request with {what}, not an event stream.",
            "upstream_invalid_response",
            provider_took_it=True,
        )

    async def _complete(self, route: Route, response: UpstreamResponse) -> Completion:
        try:
            raw = upstream_json(response.content)
            # finite recurses two frames a level, json.dumps one: an answer nested too deep to be
            # sent back is refused here, before any charge, without encoding a large answer (an
            # embeddings' floats) one extra time
            payload = finite(raw)
            if not isinstance(payload, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError, RecursionError):
            raise await self._upstream_failure(
                f"{route.provider} answered 200 with a body that is not a JSON object",
                "The provider's answer was not valid JSON.",
                "upstream_invalid_response",
            ) from None
        if not COMPLETION_KEYS.intersection(payload):
            # JSON, but no answer of any metered API (an error object sent with a 200): nothing
            # was generated for the client, so nothing is charged; the adapters read the rest
            raise await self._upstream_failure(
                f"{route.provider} answered {response.status_code} with JSON that is not a completion",
                "The provider's answer was not a completion.",
                "upstream_invalid_response",
            )
        reported = raw.get("usage")  # as reported (NaN included): judged by the settle
        texts = self.call.read_answer(payload)
        charge = await self.settle(route, reported, "\n".join(texts), sum(words(text) for text in texts))
        answer = self.call.charged_answer(payload, reported, self.counts, str(charge.charged))
        return Completion(answer, credit_headers(self.request_id, charge))

    async def _stream(self, route: Route, response: UpstreamResponse) -> MeteredEvents:
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type and media_type != "text/event-stream":
            raise await self._not_a_stream(route, response, f"a {media_type[:60]} body")
        meter = self.call.stream_meter()
        broke: list[str] = []
        yielded = False

        def failed_free() -> bool:
            return meter.provider_error is not None and not meter.generated_text.strip()

        async def events() -> AsyncGenerator[bytes, None]:
            nonlocal yielded
            lines: list[str] = []
            try:
                async for line in sse_lines(response):
                    if line:
                        lines.append(line)
                        continue
                    if (out := meter.event(lines)) is not None:
                        yielded = True
                        yield out
                    lines = []
                if lines and (out := meter.event(lines)) is not None:
                    yielded = True
                    yield out
            except TRANSPORT_ERRORS as exc:
                broke.append(failure_name(exc))
                if not yielded and meter.chunks == 0:  # nothing committed yet: an error answer
                    await response.aclose()
                    # the provider took the request (its 200 came): it may be generating, so as for
                    # a non-streamed answer that never came, the prompt is charged and no retry asked
                    lost = LostAfterSending(route, f"{broke[0]} before the stream's first chunk")
                    raise await self._lost_after_sending(lost, meter.usage) from None
                yield self.call.stream_error(
                    f"The provider's stream broke ({broke[0]}); you are billed for what was generated.",
                    "upstream_stream_broken",
                )
                return
            if meter.chunks == 0:  # nothing was generated: no 200, and the hold is released
                what = f"{meter.skipped} events its API does not define" if meter.skipped else "no event of its API"
                raise await self._not_a_stream(route, response, what)
            if failed_free():
                # the provider reported an error inside its 200 and generated nothing: it bills
                # nothing for it, and neither does the gateway (the hold is released, the row failed)
                await self.fail(
                    502, f"the provider's stream reported an error, nothing generated: {meter.provider_error}"
                )
                if closing := meter.closing_events(TokenCounts(), "0", self.call.wants_usage):
                    yield closing
                return
            # the upstream is done: settle, then tell the client what was charged
            if (reason := meter.unfinished()) is not None:
                self.usage.success, self.usage.status_code, self.usage.error_message = False, 502, reason
            charge = await self.settle(route, meter.usage, meter.generated_text, meter.words)
            if meter.skipped:
                self.metrics.usage_anomalies.labels(route.provider).inc()
            yield meter.closing_events(self.counts, str(charge.charged), self.call.wants_usage)

        async def finish(disconnected: bool) -> None:
            await response.aclose()
            if self.ended:
                return
            if failed_free():
                # the provider's error event was relayed and the client (an SDK raises on it) left
                # before the upstream's end: the provider bills nothing for it, so neither do we
                await self.fail(
                    502, f"the provider's stream reported an error, nothing generated: {meter.provider_error}"
                )
                return
            if broke:
                status, reason = 502, f"upstream stream broke: {broke[0]}"
            elif disconnected:
                status, reason = 499, "client disconnected or stopped reading mid-stream"
            else:
                status, reason = 502, "stream ended with no data"
            if meter.chunks == 0 and not (disconnected and not broke):
                # nothing reached us and the upstream failed: nothing was delivered, nothing is charged
                await self.fail(status, reason)
                return
            # the upstream accepted the request: a client that leaves pays at least the prompt
            self.usage.success, self.usage.status_code, self.usage.error_message = False, status, reason
            await self.settle(route, meter.usage, meter.generated_text, meter.words)

        return MeteredEvents(
            events(),
            finish,
            headers={"x-request-id": self.request_id},
            keepalive=self.keep_hold if self.hold_id is not None else None,
            keepalive_every=self.settings.hold_ttl_seconds / 3,
            send_timeout=self.settings.stream_send_timeout_seconds,
        )
