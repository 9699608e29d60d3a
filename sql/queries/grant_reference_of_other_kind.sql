-- The kind of operator's grant (bonus or admin_adjustment) other than $2 that already used
-- reference $1, if any: one reference is one grant, whichever kind it was.
SELECT transaction_type
  FROM credit_transactions
 WHERE reference_id = $1 AND transaction_type IN ('bonus', 'admin_adjustment') AND transaction_type <> $2
 LIMIT 1
