-- The active gateway keys of project $2 of workspace $1, oldest first, cursor after key $3, at most $4.
SELECT id, project_id, prefix, name, created_by, created_at, last_used_at, expires_at, allowed_models,
       allowed_providers, allowed_ips::text[] AS allowed_ips
  FROM gateway_api_keys
 WHERE user_id = $1 AND project_id = $2 AND is_active
   AND ($3::uuid IS NULL OR (created_at, id) > (SELECT k.created_at, k.id FROM gateway_api_keys k WHERE k.id = $3))
 ORDER BY created_at, id
 LIMIT $4
