-- Stripe webhook events not applied: received but not processed, or deferred (their target was not
-- known yet; Stripe retries them), oldest first.
-- Variables: none
SELECT
  id,
  type,
  status,
  attempts,
  last_error,
  received_at
FROM stripe_events
WHERE status IN ('received', 'deferred')
ORDER BY received_at;
