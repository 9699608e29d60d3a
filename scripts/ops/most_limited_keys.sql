-- Gateway keys with the most requests refused by a rate limit or budget in the last 24 hours.
-- Variables: none
SELECT
  k.prefix AS key,
  coalesce(k.name, '') AS key_name,
  w.name AS workspace,
  count(*) FILTER (WHERE l.rate_limited) AS rate_limited,
  count(*) FILTER (WHERE l.refused_by = 'budget') AS over_budget,
  count(*) FILTER (WHERE l.refused_by = 'key_restriction') AS not_allowed,
  max(l.created_at) AS last_refused
FROM llm_usage_log l
JOIN gateway_api_keys k ON k.id = l.gateway_key_id
JOIN workspaces w ON w.id = l.user_id
WHERE l.refused_by IS NOT NULL
  AND l.created_at > now() - interval '24 hours'
GROUP BY k.prefix, k.name, w.name
ORDER BY count(*) DESC, max(l.created_at) DESC
LIMIT 50;
