-- A user's email, Stripe customer id (NULL until their first checkout, and again once that
-- customer was deleted in Stripe) and how many customers were forgotten; no row: unknown user.
SELECT email, stripe_customer_id, stripe_customers_forgotten FROM user_credits WHERE user_id = $1
