-- How many alert rules workspace $1 has.
SELECT count(*) FROM alert_rules WHERE workspace_id = $1
