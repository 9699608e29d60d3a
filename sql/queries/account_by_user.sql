-- One account as its owner and operators see it (no row: unknown user). The cycle fields come from
-- ledger_user_cycle, the SQL definition every writer uses: a cycle that has ended but was not
-- rolled yet reads as the new cycle with its full allowance, as the next writer will leave it.
SELECT u.user_id, u.email, u.tier, u.power_level, u.balance, u.credits_held, u.monthly_allowance,
       c.credits_used AS credits_used_this_month, c.cycle_start AS billing_cycle_start,
       get_quota_usage_percentage(u.user_id) AS quota_usage_percentage,
       c.allowance_remaining, c.cycle_end AS allowance_resets_at
  FROM user_credits u CROSS JOIN LATERAL ledger_user_cycle(u, now()) c
 WHERE u.user_id = $1
