-- released: the credits the failed request's hold gave back (fail_llm_request, under the name
-- ledger_metered_calls gives the same column).
SELECT fail_llm_request($1, $2::jsonb) AS released
