-- One purchase's disputes: cents of the lost ones, cents of the open ones, credits the open ones hold.
SELECT coalesce(sum(amount_cents) FILTER (WHERE status = 'lost'), 0) AS lost,
       coalesce(sum(amount_cents) FILTER (WHERE status = 'open'), 0) AS open,
       coalesce(sum(credits_held) FILTER (WHERE status = 'open'), 0) AS held
  FROM stripe_disputes
 WHERE payment_intent_id = $1
