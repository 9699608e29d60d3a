-- A page of user $1's credit transactions, newest first: from $2, before $3, of type $4, with an
-- id below the cursor $5 (each NULL: no bound), at most $6 rows.
SELECT id, transaction_type, amount, balance_after, allowance_used, description, reference_id, created_at
  FROM credit_transactions
 WHERE user_id = $1
   AND ($2::timestamptz IS NULL OR created_at >= $2)
   AND ($3::timestamptz IS NULL OR created_at < $3)
   AND ($4::text IS NULL OR transaction_type = $4)
   AND ($5::bigint IS NULL OR id < $5)
 ORDER BY id DESC
 LIMIT $6
