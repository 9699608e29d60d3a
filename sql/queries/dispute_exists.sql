-- A row when dispute $1 is recorded already.
SELECT 1 FROM stripe_disputes WHERE dispute_id = $1
