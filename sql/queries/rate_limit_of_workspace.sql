-- One rate limit of workspace $1 by its id $2; no row for another workspace's.
SELECT * FROM rate_limits_effective WHERE workspace_id = $1 AND id = $2
