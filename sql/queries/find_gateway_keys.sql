-- Gateway keys (never their hashes), oldest first, of owner $1 and/or whose visible prefix starts
-- with the first $3 characters of $2 (a NULL filter matches every key).
SELECT id, user_id, prefix, name, is_active, expires_at, created_at, last_used_at, revoked_at
  FROM gateway_api_keys
 WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::text IS NULL OR starts_with(prefix, left($2, $3)))
 ORDER BY created_at
