-- Archives project $2 of workspace $1 (never the default one) and revokes its active gateway keys;
-- returns the project (no row: unknown, another workspace's, or the default project).
WITH archived AS (
    UPDATE projects SET archived_at = coalesce(archived_at, now())
     WHERE workspace_id = $1 AND id = $2 AND NOT is_default
    RETURNING id, workspace_id, name, is_default, created_at, archived_at
), revoked AS (
    UPDATE gateway_api_keys k SET is_active = false, revoked_at = now()
      FROM archived a
     WHERE k.project_id = a.id AND k.is_active
)
SELECT * FROM archived
