-- What verifying channel $2 of workspace $1 needs: its code's hash and whether the code is fresh.
SELECT is_verified, verification_code_hash, verification_expires_at > now() AS fresh
  FROM notification_channels WHERE workspace_id = $1 AND id = $2
