-- seed 003, "Monitoring Queries" / "Revenue Summary (This Month)", verbatim.
SELECT
  COUNT(*) as purchases,
  SUM(amount) as total_credits_sold,
  SUM(amount * (SELECT price_usd FROM credit_packages WHERE credits = amount LIMIT 1)) as estimated_revenue
FROM credit_transactions
WHERE transaction_type = 'purchase'
  AND created_at >= DATE_TRUNC('month', NOW());
