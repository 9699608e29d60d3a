-- User $1's requests and credits per UTC day and project, from UTC day $2 to UTC day $3 (both
-- included): only the day/project pairs with a request, by day then project name (byte order). A
-- request whose key had no project (none before projects existed) counts under "(no project)".
SELECT (l.created_at AT TIME ZONE 'UTC')::date AS day, coalesce(p.name, '(no project)') AS project,
       l.project_id, count(*)::integer AS requests, sum(l.credits_used) AS credits
  FROM llm_usage_log l LEFT JOIN projects p ON p.id = l.project_id
 WHERE l.user_id = $1
   AND l.created_at >= ($2::date)::timestamp AT TIME ZONE 'UTC'
   AND l.created_at < ($3::date + 1)::timestamp AT TIME ZONE 'UTC'
 GROUP BY 1, 2, 3
 ORDER BY 1, coalesce(p.name, '(no project)') COLLATE "C", l.project_id
