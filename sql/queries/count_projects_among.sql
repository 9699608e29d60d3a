-- How many of the project ids $2 are projects of workspace $1.
SELECT count(*) FROM projects WHERE workspace_id = $1 AND id = ANY ($2::uuid[])
