-- A user's active BYOK provider keys (no key material is ever stored in plaintext) (seed 003).
-- Variables: user_id (uuid)
SELECT
  provider,
  key_name,
  is_default,
  is_active,
  last_used_at,
  usage_count_this_month
FROM user_provider_keys
WHERE user_id = :'user_id'
  AND is_active = true
ORDER BY is_default DESC, provider;
