-- A user's last 10 credit transactions, newest first (seed 003).
-- Variables: user_id (uuid)
SELECT
  created_at,
  transaction_type,
  amount,
  balance_after,
  description,
  reference_id
FROM credit_transactions
WHERE user_id = :'user_id'
ORDER BY created_at DESC, id DESC
LIMIT 10;
