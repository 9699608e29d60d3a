-- Webhook $2 of workspace $1 signs with the new secret $3 from now on, and with its current one
-- (kept as the previous) until $4 as well. Returns the id, or nothing.
UPDATE webhooks
   SET previous_secret_encrypted = secret_encrypted, previous_secret_expires_at = $4,
       secret_encrypted = $3, updated_at = now()
 WHERE workspace_id = $1 AND id = $2
RETURNING id
