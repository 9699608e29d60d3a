-- The id of the person with email $1 (any case); no row when none.
SELECT id FROM users WHERE lower(email) = lower($1)
