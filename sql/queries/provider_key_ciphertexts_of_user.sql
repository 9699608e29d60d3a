-- The ciphertexts of a user's active BYOK keys, only to tell whether each still decrypts
-- (ledger/gateway/byok.py list_keys): never shown.
SELECT id, provider, encrypted_key
  FROM user_provider_keys
 WHERE user_id = $1 AND is_active
