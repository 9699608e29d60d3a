-- What this service recorded when it created Checkout Session $1; no row: not created here.
SELECT * FROM stripe_checkout_sessions WHERE session_id = $1
