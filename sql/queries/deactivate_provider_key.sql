-- Deletes one of the owner's own active BYOK keys ($1 key, $2 owner): the row stays for the
-- record (name, hint, when it was used) but its ciphertext is wiped, so a deleted key can never
-- be decrypted again, by the service or by whoever reads the database. No row when there is none
-- (also when the key is someone else's).
UPDATE user_provider_keys SET is_active = false, is_default = false, encrypted_key = ''::bytea, updated_at = now()
 WHERE id = $1 AND user_id = $2 AND is_active
RETURNING id
