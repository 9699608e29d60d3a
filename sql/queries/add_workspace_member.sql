-- Makes person $2 a member of workspace $1 with role $3 (an existing member keeps their role);
-- returns the role they hold.
INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, $3)
ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = workspace_members.role
RETURNING role
