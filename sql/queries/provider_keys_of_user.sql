-- A user's active BYOK keys, public columns only (never the ciphertext): defaults first.
SELECT id, provider, key_name, key_hint, is_default, is_active, last_used_at, usage_count_this_month, created_at
  FROM user_provider_keys
 WHERE user_id = $1 AND is_active
 ORDER BY is_default DESC, provider, created_at
