"""The issue's "done when" in Chromium and the real SDK: an owner caps a project at 20 credits a
month and a key at 60 requests a minute on the dashboard; a member's script that loops in
parallel is stopped at exactly those numbers with the SDK's own errors; the dashboard shows what
is left."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import openai
from playwright.async_api import expect

from api.web.pages import credits
from ledger.accounts import projects
from ledger.accounts.actor import OPERATOR, acting
from ledger.gateway import keys as gateway_keys
from tests.accounts.helpers import PASSWORD, make_team
from tests.api.web.conftest import screenshot

HI = [{"role": "user", "content": "Hi"}]


async def parallel(client: openai.AsyncOpenAI, n: int, max_tokens: int) -> tuple[int, list[openai.APIStatusError]]:
    async def one() -> openai.APIStatusError | None:
        try:
            await client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=max_tokens)
        except openai.APIStatusError as refused:
            return refused
        return None

    results = await asyncio.gather(*(one() for _ in range(n)))
    refusals = [r for r in results if r is not None]
    return n - len(refusals), refusals


async def test_an_owner_caps_a_project_and_a_key_and_a_parallel_script_stops_at_both(
    pool, start_service, upstreams, page
):
    upstreams["openai"].usage = (10, 5)  # cheap answers first: the rate limit binds
    service = start_service(upstreams)
    team = await make_team(pool, credits_="100", roles=("OWNER", "DEVELOPER"))
    async with acting(pool, OPERATOR) as conn:
        project = await projects.create_project(conn, team.workspace_id, "Search")
        looped = await gateway_keys.create_key(
            conn, team.workspace_id, "script", None, project["id"], team.people["DEVELOPER"]
        )
        other = await gateway_keys.create_key(
            conn, team.workspace_id, "batch", None, project["id"], team.people["DEVELOPER"]
        )

    # the owner, on the dashboard
    await page.goto(f"{service.url}/dashboard/sign-in")
    await page.locator("#email").fill(team.emails["OWNER"])
    await page.locator("#password").fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await page.goto(f"{service.url}/dashboard/workspaces")
    await page.locator("form", has=page.locator(f"input[value='{team.workspace_id}']")).get_by_role("button").click()
    await page.goto(f"{service.url}/dashboard/controls")
    form = page.locator("#budget-form")
    await form.get_by_label("Scope").select_option("project")
    await form.get_by_label("Its id").fill(str(project["id"]))
    await form.get_by_label("Credits").fill("20")
    await form.get_by_label("Period").select_option("monthly")
    await form.get_by_role("button", name="Set budget").click()
    await expect(page.get_by_role("status")).to_contain_text("Budget set")
    form = page.locator("#limit-form")
    await form.get_by_label("Scope").select_option("key")
    await form.get_by_label("Its id").fill(str(looped.id))
    await form.get_by_label("Strategy").select_option("sliding_window")
    await form.get_by_label("Requests").fill("60")
    await form.get_by_label("per seconds").fill("60")
    await form.get_by_role("button", name="Set rate limit").click()
    await expect(page.get_by_role("status")).to_contain_text("Rate limit set")

    # the member's script: 100 at once on the limited key
    script = openai.AsyncOpenAI(base_url=f"{service.url}/v1", api_key=looped.key, max_retries=0, timeout=60)
    served, refused = await parallel(script, 100, 5)
    assert served == 60 and len(refused) == 40
    assert all(isinstance(r, openai.RateLimitError) and r.body["code"] == "rate_limit_exceeded" for r in refused)  # type: ignore[index]

    # dearer answers on the project's other key: the project's budget binds
    upstreams["openai"].usage = (10, 4000)
    batch = openai.AsyncOpenAI(base_url=f"{service.url}/v1", api_key=other.key, max_retries=0, timeout=60)
    served, refused = await parallel(batch, 20, 4000)
    assert served >= 1 and refused
    assert all(r.status_code == 402 and r.body["code"] == "budget_exceeded" for r in refused)  # type: ignore[index]
    budget = await pool.fetchrow("SELECT * FROM budgets_now WHERE scope_id = $1", str(project["id"]))
    spent = await pool.fetchval("SELECT sum(credits_used) FROM llm_usage_log WHERE project_id = $1", project["id"])
    hold = await pool.fetchval(
        "SELECT max(amount) FROM credit_holds h JOIN llm_usage_log l USING (hold_id) WHERE l.gateway_key_id = $1",
        other.id,
    )
    assert budget["spent"] == spent <= Decimal(20) < spent + hold  # stopped where one more could pass it
    assert budget["held"] == 0

    await page.reload()
    row = page.locator(f"#budgets tr[data-budget-id='{budget['id']}']")
    await expect(row.locator(".left")).to_have_text(credits(Decimal(20) - spent))
    await expect(row.locator(".spent")).to_have_text(credits(spent))
    await screenshot(page, "controls")
