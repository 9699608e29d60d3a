-- Keeps an event that was not applied (deferred or rejected, $5) with its reason ($6) and the
-- payment intent it concerned ($8); counts the attempt. An event already final stays as it is.
INSERT INTO stripe_events (id, type, payload, livemode, status, attempts, last_error, created, reference)
VALUES ($1, $2, $3::jsonb, $4, $5, 1, $6, $7, $8)
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, attempts = stripe_events.attempts + 1,
                               last_error = EXCLUDED.last_error, reference = EXCLUDED.reference
WHERE stripe_events.status NOT IN ('processed', 'ignored', 'stale', 'rejected', 'review')
