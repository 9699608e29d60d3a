-- Re-encrypted secrets of webhook $1, written only if its ciphertexts are still $2 and $3 (a
-- rotation meanwhile wins). Returns the id, or nothing.
UPDATE webhooks SET secret_encrypted = $4, previous_secret_encrypted = $5
 WHERE id = $1 AND secret_encrypted = $2 AND previous_secret_encrypted IS NOT DISTINCT FROM $3
RETURNING id
