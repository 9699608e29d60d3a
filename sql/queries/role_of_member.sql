-- Person $2's role in workspace $1; no row when they are not a member.
SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2
