-- How many BYOK keys user $1 holds active (any provider): what byok.MAX_ACTIVE_KEYS bounds.
SELECT count(*) FROM user_provider_keys WHERE user_id = $1 AND is_active
