-- Replaces a BYOK key's ciphertext ($1 key) by its re-encryption ($3) only while it is still the
-- one that was read ($2): a key deleted or replaced meanwhile is left alone. No row: left alone.
UPDATE user_provider_keys SET encrypted_key = $3, updated_at = now()
 WHERE id = $1 AND encrypted_key = $2
RETURNING id
