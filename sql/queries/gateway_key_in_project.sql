-- Active gateway key $3 of project $2 of workspace $1; no row when unknown, revoked or elsewhere.
SELECT id, project_id, prefix, name, created_by, created_at, last_used_at, expires_at, allowed_models,
       allowed_providers, allowed_ips::text[] AS allowed_ips
  FROM gateway_api_keys
 WHERE user_id = $1 AND project_id = $2 AND id = $3 AND is_active
