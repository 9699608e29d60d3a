-- Marks invitation $1 accepted by person $2.
UPDATE workspace_invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1 RETURNING id
