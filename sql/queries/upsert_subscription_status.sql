-- Subscription $1 (user $2) as of a subscription event: tier $3, status $4, and the event it
-- came from ($5 created, $6 status rank, $7 id), which orders the later events.
INSERT INTO stripe_subscriptions AS s (subscription_id, user_id, tier, status, last_event_created,
                                       last_event_rank, last_event_id)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (subscription_id) DO UPDATE
   SET tier = EXCLUDED.tier, status = EXCLUDED.status, last_event_created = EXCLUDED.last_event_created,
       last_event_rank = EXCLUDED.last_event_rank, last_event_id = EXCLUDED.last_event_id,
       updated_at = now()
