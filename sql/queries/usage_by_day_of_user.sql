-- User $1's requests and credits per UTC day and model, from UTC day $2 to UTC day $3 (both
-- included): only the day/model pairs with a request, by day then model (byte order, so every
-- reader sorts alike). Every request counts, failed ones too: a failure can be charged.
SELECT (created_at AT TIME ZONE 'UTC')::date AS day, model, count(*)::integer AS requests,
       sum(credits_used) AS credits
  FROM llm_usage_log
 WHERE user_id = $1
   AND created_at >= ($2::date)::timestamp AT TIME ZONE 'UTC'
   AND created_at < ($3::date + 1)::timestamp AT TIME ZONE 'UTC'
 GROUP BY 1, 2
 ORDER BY day, model COLLATE "C"
