-- A page of user $1's metered requests, newest first: from $2, before $3, of model $4, with an id
-- below the cursor $5, of project $7 (each NULL: no bound), at most $6 rows. Each token type's count is there
-- (prompt_tokens and completion_tokens are the totals; the others are parts of them).
SELECT id, request_id, api, model, provider, power_level, prompt_tokens, completion_tokens, total_tokens,
       cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, input_audio_tokens, cache_audio_read_tokens,
       input_image_tokens, cache_image_read_tokens, reasoning_tokens, output_audio_tokens, output_image_tokens,
       cost_usd, cost_multiplier, credits_used, latency_ms, success, status_code, error_message, is_byok, created_at,
       project_id
  FROM llm_usage_log
 WHERE user_id = $1
   AND ($2::timestamptz IS NULL OR created_at >= $2)
   AND ($3::timestamptz IS NULL OR created_at < $3)
   AND ($4::text IS NULL OR model = $4)
   AND ($5::bigint IS NULL OR id < $5)
   AND ($7::uuid IS NULL OR project_id = $7)
 ORDER BY id DESC
 LIMIT $6
