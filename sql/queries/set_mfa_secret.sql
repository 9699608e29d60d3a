-- Stores person $1's new TOTP secret $2 (encrypted), not yet enabled.
UPDATE users SET mfa_secret_encrypted = $2, mfa_enabled_at = NULL, mfa_last_step = NULL, updated_at = now()
 WHERE id = $1 AND mfa_enabled_at IS NULL
RETURNING id
