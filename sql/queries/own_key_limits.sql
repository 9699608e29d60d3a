-- For a new key of user $1 expiring at $2 (NULL: never): how many of the user's keys can still be
-- used (active and unexpired), and whether $2 is already past by the database's clock.
SELECT count(*) FILTER (WHERE is_active AND (expires_at IS NULL OR expires_at > now())) AS usable_keys,
       coalesce($2::timestamptz <= now(), false) AS expiry_passed
  FROM gateway_api_keys
 WHERE user_id = $1
