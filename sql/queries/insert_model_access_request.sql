-- A member's request ($3, a person) for model $4 on key $2 of workspace $1, with a reason $5.
-- One pending request per key and model (a second is the same row). No row when the key is not
-- an active key of the workspace.
INSERT INTO model_access_requests (workspace_id, key_id, requested_by, model, reason)
SELECT $1, k.id, $3, $4, $5 FROM gateway_api_keys k WHERE k.id = $2 AND k.user_id = $1 AND k.is_active
ON CONFLICT (key_id, model) WHERE status = 'pending' DO UPDATE SET reason = coalesce(EXCLUDED.reason, model_access_requests.reason)
RETURNING *
