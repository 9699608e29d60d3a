"""Spend controls: budgets, rate limits and key restrictions, enforced inside the hold's own SQL
call (migration 0021) and managed by owners and admins (the administration API, the dashboard,
the CLI)."""
