-- The latest auto top-ups of wallet $1, newest first, at most $2.
SELECT id, status, credits, amount_cents, currency, payment_intent_id, failure_code, failure_message, created_at
  FROM auto_top_ups WHERE user_id = $1 ORDER BY id DESC LIMIT $2
