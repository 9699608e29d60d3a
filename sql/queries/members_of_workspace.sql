-- The members of workspace $1 with their email and name, ordered by id (a cursor: after $2), at most $3.
SELECT u.id, u.email, u.name, m.role, m.created_at AS added_at
  FROM workspace_members m JOIN users u ON u.id = m.user_id
 WHERE m.workspace_id = $1 AND ($2::uuid IS NULL OR u.id > $2)
 ORDER BY u.id
 LIMIT $3
