-- Subscription $1's tier becomes $2.
UPDATE stripe_subscriptions SET tier = $2, updated_at = now() WHERE subscription_id = $1
