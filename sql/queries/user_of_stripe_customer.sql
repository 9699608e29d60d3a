-- The user whose Stripe customer is $1; no row: no such user yet.
SELECT user_id FROM user_credits WHERE stripe_customer_id = $1
