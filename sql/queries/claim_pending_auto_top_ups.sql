-- At most $1 pending top-ups to charge, leased for $2 seconds (updated_at moves on: a process that
-- dies mid-call leaves the top-up to the next pass, whose retried call Stripe answers from its
-- idempotency key).
UPDATE auto_top_ups t SET updated_at = now() + make_interval(secs => $2)
  FROM (SELECT id FROM auto_top_ups WHERE status = 'pending' AND updated_at <= now()
         ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
 WHERE t.id = due.id
RETURNING t.id, t.user_id, t.credits, t.amount_cents, t.currency, t.payment_method_id, t.stripe_customer_id,
          t.idempotency_key
