-- A new webhook of workspace $1 with the secret $6 (already encrypted under its id $2).
-- Returns the id: the caller reads the row back.
INSERT INTO webhooks (id, workspace_id, name, description, url, secret_encrypted, events, filter_project_ids,
                      timeout_ms, created_by)
VALUES ($2, $1, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING id
