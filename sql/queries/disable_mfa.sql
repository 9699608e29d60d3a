-- Turns off person $1's TOTP and drops its secret and backup codes.
WITH cleared AS (DELETE FROM user_backup_codes WHERE user_id = $1)
UPDATE users SET mfa_secret_encrypted = NULL, mfa_enabled_at = NULL, mfa_last_step = NULL, updated_at = now() WHERE id = $1
