-- The last $1 UTC days, today (by the database's clock) included: the first and the last day.
SELECT (now() AT TIME ZONE 'UTC')::date - ($1::integer - 1) AS first_day, (now() AT TIME ZONE 'UTC')::date AS last_day
