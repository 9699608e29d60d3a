-- Dispute $1, locked for the rest of the transaction.
SELECT * FROM stripe_disputes WHERE dispute_id = $1 FOR UPDATE
