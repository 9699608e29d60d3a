-- Closes dispute $1 as won, lost or closed ($2).
UPDATE stripe_disputes SET status = $2, closed_at = now() WHERE dispute_id = $1
