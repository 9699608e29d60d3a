-- A page of the audit log, newest first: a workspace's rows ($1; NULL = every workspace) and the
-- person-level rows of its current members, filtered by time ($2 <= created_at < $3), actions ($4),
-- actor ids ($5), resource ids ($6), with an id cursor (older than $7, newer than $8), at most $9.
SELECT a.id, a.workspace_id, a.person_id, a.actor_type, a.actor_id, a.actor_label, a.action, a.resource_type,
       a.resource_id, a.before, a.after, host(a.ip) AS ip, a.user_agent, a.request_id, a.created_at
  FROM audit_logs a
 WHERE ($1::uuid IS NULL
        OR a.workspace_id = $1
        OR (a.workspace_id IS NULL AND a.person_id IN (SELECT m.user_id FROM workspace_members m WHERE m.workspace_id = $1)))
   AND ($2::timestamptz IS NULL OR a.created_at >= $2)
   AND ($3::timestamptz IS NULL OR a.created_at < $3)
   AND ($4::text[] IS NULL OR a.action = ANY ($4))
   AND ($5::text[] IS NULL OR a.actor_id = ANY ($5))
   AND ($6::text[] IS NULL OR a.resource_id = ANY ($6))
   AND ($7::bigint IS NULL OR a.id < $7)
   AND ($8::bigint IS NULL OR a.id > $8)
 ORDER BY a.id DESC
 LIMIT $9
