-- Turns on person $1's TOTP, the code of step $2 having proved the secret; their backup codes are replaced by $3 (hashes).
WITH cleared AS (DELETE FROM user_backup_codes WHERE user_id = $1),
     added AS (INSERT INTO user_backup_codes (user_id, code_hash) SELECT $1, unnest($3::text[]))
UPDATE users SET mfa_enabled_at = now(), mfa_last_step = $2, updated_at = now() WHERE id = $1
