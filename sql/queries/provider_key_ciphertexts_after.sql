-- The stored BYOK ciphertexts to rotate, $2 at a time in id order after id $1 (deleted keys have
-- none left: their ciphertext was wiped).
SELECT id, user_id, provider, encrypted_key
  FROM user_provider_keys
 WHERE id > $1 AND length(encrypted_key) > 0
 ORDER BY id
 LIMIT $2
