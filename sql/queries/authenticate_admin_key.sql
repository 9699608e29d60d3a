-- The live admin key whose hash is $1: its id, workspace and prefix; touches last_used_at at most once a minute.
WITH k AS (
    SELECT id, workspace_id, prefix, last_used_at FROM admin_api_keys WHERE key_hash = $1 AND revoked_at IS NULL
), touched AS (
    UPDATE admin_api_keys a SET last_used_at = now()
      FROM k
     WHERE a.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
)
SELECT id, workspace_id, prefix FROM k
