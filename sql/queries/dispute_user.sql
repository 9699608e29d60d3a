-- The user of dispute $1; no row: not recorded.
SELECT user_id FROM stripe_disputes WHERE dispute_id = $1
