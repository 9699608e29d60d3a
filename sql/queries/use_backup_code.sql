-- Spends person $1's unused backup code hashing to $2; returns a row when it was good.
UPDATE user_backup_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING user_id
