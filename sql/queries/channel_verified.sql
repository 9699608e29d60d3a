-- Channel $2 of workspace $1 is verified: its code was entered back. Returns the id.
UPDATE notification_channels
   SET is_verified = true, verified_at = now(), verification_code_encrypted = NULL, verification_expires_at = NULL,
       updated_at = now()
 WHERE workspace_id = $1 AND id = $2
RETURNING id
