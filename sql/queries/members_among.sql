-- Which of the ids $2 are members of workspace $1.
SELECT user_id FROM workspace_members WHERE workspace_id = $1 AND user_id = ANY ($2::uuid[])
