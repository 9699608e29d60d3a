-- Event $1's status, its row locked for the rest of the transaction (two deliveries serialise).
SELECT status FROM stripe_events WHERE id = $1 FOR UPDATE
