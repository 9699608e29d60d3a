-- Credits sold, granted and taken back vs. credits used, per UTC month over the last 12 months
-- (this one included); a month with no row in either table has no row (a chart fills the zeros).
-- month is the month's first day (a date, UTC). From credit_transactions, by created_at:
--   credits_sold: purchases credited (transaction_type 'purchase');
--   credits_granted: bonus, admin_adjustment and refund rows that add credits;
--   credits_taken_back: refund and admin_adjustment rows that remove credits (Stripe refunds, lost
--     disputes, an operator's removal), as a positive number.
-- From llm_usage_log, by created_at: credits_used, what metered requests were charged (failed ones
-- included); and of it, through each request's usage transaction (llm_usage_log.transaction_id),
-- used_from_allowance (the transaction's allowance_used: the cycle's monthly allowance) and
-- used_from_balance (minus its amount: what came out of the purchased balance). A usage debit made
-- by hand rather than by a metered request is in neither.
-- Variables: none
WITH since AS (
  -- month arithmetic on UTC's calendar, whatever the session's TimeZone
  SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '11 months') AT TIME ZONE 'UTC' AS start
),
ledger AS (
  SELECT
    (date_trunc('month', t.created_at AT TIME ZONE 'UTC'))::date AS month,
    sum(t.amount) FILTER (WHERE t.transaction_type = 'purchase') AS sold,
    sum(t.amount) FILTER (WHERE t.transaction_type IN ('bonus', 'admin_adjustment', 'refund') AND t.amount > 0)
      AS granted,
    -sum(t.amount) FILTER (WHERE t.transaction_type IN ('admin_adjustment', 'refund') AND t.amount < 0)
      AS taken_back
  FROM credit_transactions t, since
  WHERE t.created_at >= since.start
    AND t.transaction_type <> 'usage'
  GROUP BY 1
),
used AS (
  SELECT
    (date_trunc('month', l.created_at AT TIME ZONE 'UTC'))::date AS month,
    sum(l.credits_used) AS used,
    sum(t.allowance_used) AS from_allowance,
    -sum(t.amount) AS from_balance
  FROM llm_usage_log l
  CROSS JOIN since
  LEFT JOIN credit_transactions t ON t.id = l.transaction_id
  WHERE l.created_at >= since.start
  GROUP BY 1
)
SELECT
  month,
  coalesce(ledger.sold, 0) AS credits_sold,
  coalesce(ledger.granted, 0) AS credits_granted,
  coalesce(ledger.taken_back, 0) AS credits_taken_back,
  coalesce(used.used, 0) AS credits_used,
  coalesce(used.from_allowance, 0) AS used_from_allowance,
  coalesce(used.from_balance, 0) AS used_from_balance
FROM ledger
FULL JOIN used USING (month)
ORDER BY month DESC;
