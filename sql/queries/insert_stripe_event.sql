-- Stores a received event by its id, once; a redelivery changes nothing.
INSERT INTO stripe_events (id, type, payload, livemode, created)
VALUES ($1, $2, $3::jsonb, $4, $5)
ON CONFLICT (id) DO NOTHING
