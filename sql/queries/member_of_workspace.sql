-- Member $2 of workspace $1 with their email and name; no row when they are not a member.
SELECT u.id, u.email, u.name, m.role, m.created_at AS added_at
  FROM workspace_members m JOIN users u ON u.id = m.user_id
 WHERE m.workspace_id = $1 AND m.user_id = $2
