"""GET /openapi.json describes every endpoint truly: every route is in it, every documented path
is served, the suite's responses validate against it, and a schemathesis run over it against the
real service (real uvicorn, PostgreSQL, fake upstreams and Stripe) finds no 5xx and no response
outside its documented shape."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema_rs
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from api.app import create_app
from api.openapi import DOCUMENT
from ledger.settings import Settings
from tests.accounts.helpers import make_team
from tests.api.conftest import ADMIN_TOKEN, HTTP_TIMEOUT

MESSAGES = [{"role": "user", "content": "Hi"}]
# answered by the service, but not part of its API: the built-in demo provider's upstream, and the
# dashboards' HTML pages (tests/api/web)
UNDOCUMENTED_PREFIXES = ("/demo/", "/dashboard", "/admin/dashboard")


def served_operations() -> set[tuple[str, str]]:
    app = create_app(Settings(database_url="postgresql://x@127.0.0.1/x"), "postgresql://x@127.0.0.1/x")
    found = set()
    for route in app.routes:
        if not isinstance(route, Route) or route.path.startswith(UNDOCUMENTED_PREFIXES):
            continue
        path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method.lower(), path))
    return found


def documented_operations() -> set[tuple[str, str]]:
    return {(method, path) for path, item in DOCUMENT["paths"].items() for method in item}


def test_every_route_is_documented_and_every_documented_operation_is_served():
    assert served_operations() == documented_operations()


def validate(path: str, method: str, response: httpx.Response) -> None:
    """The response against the document: its status is documented, its body fits the schema."""
    documented = DOCUMENT["paths"][path][method]["responses"]
    entry = documented.get(str(response.status_code)) or documented.get(f"{str(response.status_code)[0]}XX")
    assert entry is not None, (path, method, response.status_code, response.text[:200])
    schema = entry["content"]["application/json"]["schema"]
    schema = {**schema, "components": DOCUMENT["components"]}
    jsonschema_rs.validator_for(schema).validate(response.json())


async def test_the_suites_responses_fit_the_document(upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="10")
    user = service.admin("POST", "/admin/users", json={"email": "doc@example.com"})
    user_id = user.json()["user_id"]
    service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)
    new_key = service.post("/v1/keys", account.key, {"name": "doc"})
    revoke = httpx.delete(
        f"{service.url}/v1/keys/{new_key.json()['id']}",
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=HTTP_TIMEOUT,
    )
    power = httpx.patch(
        f"{service.url}/v1/account",
        headers={"Authorization": f"Bearer {account.key}"},
        json={"power_level": "eco"},
        timeout=HTTP_TIMEOUT,
    )
    checks = [
        ("/v1/keys", "post", new_key),
        ("/v1/keys/{key_id}", "delete", revoke),
        ("/v1/account", "patch", power),
        ("/v1/keys", "get", service.get("/v1/keys", account.key)),
        ("/v1/usage/daily", "get", service.get("/v1/usage/daily", account.key)),
        ("/v1/usage/daily", "get", service.get("/v1/usage/daily", account.key, days="91")),
        ("/admin/users", "post", user),
        ("/admin/users/{user_id}", "get", service.admin("GET", f"/admin/users/{user_id}")),
        ("/admin/users/{user_id}/keys", "post", service.admin("POST", f"/admin/users/{user_id}/keys", json={})),
        (
            "/admin/users/{user_id}/credits",
            "post",
            service.admin("POST", f"/admin/users/{user_id}/credits", json={"amount": "5", "transaction_type": "bonus"}),
        ),
        ("/admin/keys", "get", service.admin("GET", "/admin/keys", params={"user_id": user_id})),
        ("/admin/packages", "get", service.admin("GET", "/admin/packages")),
        ("/admin/model-prices", "get", service.admin("GET", "/admin/model-prices")),
        ("/v1/credits/balance", "get", service.get("/v1/credits/balance", account.key)),
        ("/v1/credits/transactions", "get", service.get("/v1/credits/transactions", account.key)),
        ("/v1/usage", "get", service.get("/v1/usage", account.key)),
        ("/v1/models", "get", service.get("/v1/models", account.key)),
        ("/v1/credits/packages", "get", service.get("/v1/credits/packages", account.key)),
        ("/v1/provider-keys", "get", service.get("/v1/provider-keys", account.key)),
        ("/v1/usage", "get", service.get("/v1/usage", account.key, limit="0")),
        ("/v1/credits/balance", "get", service.get("/v1/credits/balance", "sk-lg-wrong")),
        ("/readyz", "get", httpx.get(f"{service.url}/readyz", timeout=HTTP_TIMEOUT)),
        ("/healthz", "get", httpx.get(f"{service.url}/healthz", timeout=HTTP_TIMEOUT)),
    ]
    for path, method, response in checks:
        validate(path, method, response)
    served = httpx.get(f"{service.url}/openapi.json", timeout=HTTP_TIMEOUT)
    assert served.status_code == 200 and served.json()["openapi"].startswith("3.1")


# --- schemathesis -------------------------------------------------------------------------------------

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# per operation; ~30 operations: a couple of minutes at most on a small machine
MAX_EXAMPLES = 30


async def test_schemathesis_finds_no_server_error_and_no_undocumented_response(
    pool, upstreams, start_service, make_account, fake_stripe, tmp_path
):
    service = start_service(
        upstreams,
        stripe_secret_key=fake_stripe.secret_key,
        stripe_api_base=fake_stripe.api_base,
        mail_outbox_dir=tmp_path / "outbox",
    )
    account = await make_account(credits_="1000")
    team = await make_team(pool, roles=("OWNER", "DEVELOPER", "VIEWER"))
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    failures: list[str] = []

    def auth_for(path: str) -> dict[str, Any]:
        if path.startswith("/v1/organization"):
            return {"Authorization": f"Bearer {team.admin_key}"}
        return {"Authorization": f"Bearer {ADMIN_TOKEN if path.startswith('/admin') else account.key}"}

    def fuzz(operation: Any) -> None:
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        # valid requests, and requests that break the document (wrong types, missing fields...)
        @given(
            case=st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
            )
        )
        def run(case: Any) -> None:
            response = case.call(base_url=service.url, headers=auth_for(operation.path), timeout=HTTP_TIMEOUT)
            case.validate_response(response, checks=CHECKS)

        run()

    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            fuzz(operation)
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    assert failures == [], "\n\n".join(failures)
