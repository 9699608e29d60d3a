-- What verifying channel $2 of workspace $1 needs, locked until the caller's transaction ends (so
-- guesses sent at once are counted one after another): its encrypted code and whether it is fresh.
SELECT id AS channel_id, is_verified, verification_code_encrypted, verification_expires_at > now() AS fresh
  FROM notification_channels WHERE workspace_id = $1 AND id = $2
   FOR UPDATE
