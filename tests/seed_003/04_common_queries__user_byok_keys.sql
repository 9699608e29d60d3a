-- seed 003, "Common Queries" / "User BYOK Keys", verbatim.
SELECT
  provider,
  key_name,
  is_default,
  is_active,
  last_used_at,
  usage_count_this_month
FROM user_provider_keys
WHERE user_id = 'USER_UUID'
  AND is_active = true
ORDER BY is_default DESC, provider;
