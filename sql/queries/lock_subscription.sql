-- Subscription $1, locked for the rest of the transaction; no row: not seen yet.
SELECT * FROM stripe_subscriptions WHERE subscription_id = $1 FOR UPDATE
