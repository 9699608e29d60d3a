-- Event $1's outcome ($2) and reason ($3), counting the attempt.
UPDATE stripe_events SET status = $2, attempts = attempts + 1, last_error = $3, processed_at = now()
 WHERE id = $1
