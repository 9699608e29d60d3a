-- A paid invoice's period ($4, $5) for subscription $1 of user $2; the invoice's tier ($3) and
-- status active hold only while no subscription event has been applied (those say better).
INSERT INTO stripe_subscriptions AS s (subscription_id, user_id, tier, status, current_period_start,
                                       current_period_end)
VALUES ($1, $2, $3, 'active', $4, $5)
ON CONFLICT (subscription_id) DO UPDATE
   SET current_period_start = EXCLUDED.current_period_start,
       current_period_end = EXCLUDED.current_period_end,
       tier = CASE WHEN s.last_event_created IS NULL THEN EXCLUDED.tier ELSE s.tier END,
       updated_at = now()
