-- Stores a user's BYOK key ($1 user, $2 provider, $3 name, $4 ciphertext, $5 hint, $6 default)
-- and returns its public columns; a new default clears the user's previous default for that
-- provider. No row: unknown user. A second active key of that name raises unique_violation.
WITH cleared AS (
    UPDATE user_provider_keys SET is_default = false, updated_at = now()
     WHERE $6 AND user_id = $1 AND provider = $2 AND is_default
)
INSERT INTO user_provider_keys (user_id, provider, key_name, encrypted_key, key_hint, is_default)
SELECT user_id, $2, $3, $4, $5, $6 FROM user_credits WHERE user_id = $1
RETURNING id, provider, key_name, key_hint, is_default, is_active, last_used_at, usage_count_this_month, created_at
