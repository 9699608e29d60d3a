-- Approves ($3 true) or denies request $2 of workspace $1, decided by person $4 (NULL: an admin
-- key); an approval adds the model to its key's allowed models (a key with no restriction keeps
-- none). No row when the request is not pending in the workspace.
WITH decided AS (
    UPDATE model_access_requests
       SET status = CASE WHEN $3 THEN 'approved' ELSE 'denied' END, decided_by = $4, decided_at = now()
     WHERE workspace_id = $1 AND id = $2 AND status = 'pending'
    RETURNING *
), granted AS (
    UPDATE gateway_api_keys k SET allowed_models = array_append(k.allowed_models, d.model)
      FROM decided d
     WHERE $3 AND k.id = d.key_id AND k.allowed_models IS NOT NULL AND NOT d.model = ANY (k.allowed_models)
)
SELECT * FROM decided
