-- Tokens by type per model, API and provider, last 30 days: how much of the input was read from
-- or written to the provider's cache, how much output was reasoning, and what it cost.
-- Variables: none
SELECT
  model,
  coalesce(api, '(unknown)') AS api,
  coalesce(provider, '(none)') AS provider,
  count(*) AS requests,
  sum(prompt_tokens) AS input_tokens,
  sum(cache_read_tokens) AS cache_read_tokens,
  round(100.0 * sum(cache_read_tokens) / nullif(sum(prompt_tokens), 0), 1) AS cache_read_pct,
  sum(cache_write_tokens) AS cache_write_tokens,
  sum(cache_write_1h_tokens) AS cache_write_1h_tokens,
  sum(input_audio_tokens + input_image_tokens) AS audio_image_input_tokens,
  sum(completion_tokens) AS output_tokens,
  sum(reasoning_tokens) AS reasoning_tokens,
  sum(output_audio_tokens + output_image_tokens) AS audio_image_output_tokens,
  sum(cost_usd) AS cost_usd,
  sum(credits_used) AS credits
FROM llm_usage_log
WHERE created_at > now() - interval '30 days'
GROUP BY model, api, provider
ORDER BY credits DESC, model, api, provider;
