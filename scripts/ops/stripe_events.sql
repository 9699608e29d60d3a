-- Stripe webhook events that need a look: not applied yet (received, deferred: Stripe retries them
-- for about 3 days) and those kept for a human (rejected: can never apply; review: real money that
-- does not match what was sold), oldest first, with their reason.
-- Variables: none
SELECT
  id,
  type,
  status,
  attempts,
  last_error,
  received_at,
  created
FROM stripe_events
WHERE status IN ('received', 'deferred', 'rejected', 'review')
ORDER BY received_at;
