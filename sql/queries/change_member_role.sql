-- Sets member $2's role in workspace $1 to $3; returns the member with the new role (no row: not a member).
UPDATE workspace_members m SET role = $3
  FROM users u
 WHERE m.workspace_id = $1 AND m.user_id = $2 AND u.id = m.user_id
RETURNING u.id, u.email, u.name, m.role, m.created_at AS added_at
