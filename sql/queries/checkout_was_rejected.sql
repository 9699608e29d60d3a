-- A row when the checkout paid by payment intent $1 was rejected (nothing was credited).
SELECT 1 FROM stripe_events WHERE reference = $1 AND status = 'rejected'
