-- Email $1 was not sent ($2 says why): due again at $3, or failed for good when $3 is NULL.
UPDATE notification_emails
   SET status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
       next_attempt_at = coalesce($3, next_attempt_at), last_error = left($2, 1000)
 WHERE id = $1 AND status = 'pending'
