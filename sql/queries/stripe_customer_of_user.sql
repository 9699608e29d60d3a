-- A user's email and Stripe customer id (NULL until their first checkout); no row: unknown user.
SELECT email, stripe_customer_id FROM user_credits WHERE user_id = $1
