-- The model-access requests of workspace $1, newest first (pending ones first), with the key's
-- name and the requester's email; at most $2.
SELECT r.*, k.name AS key_name, k.prefix AS key_prefix, u.email AS requested_by_email
  FROM model_access_requests r
  JOIN gateway_api_keys k ON k.id = r.key_id
  LEFT JOIN users u ON u.id = r.requested_by
 WHERE r.workspace_id = $1
 ORDER BY r.status <> 'pending', r.created_at DESC
 LIMIT $2
