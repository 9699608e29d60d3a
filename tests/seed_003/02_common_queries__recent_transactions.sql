-- seed 003, "Common Queries" / "Recent Transactions", verbatim.
SELECT
  created_at,
  transaction_type,
  amount,
  balance_after,
  description,
  reference_id
FROM credit_transactions
WHERE user_id = 'USER_UUID'
ORDER BY created_at DESC
LIMIT 10;
