-- Model prices by provider and model: the active ones, or every one when $1.
SELECT provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window, max_output_tokens, is_active
  FROM model_prices
 WHERE is_active OR $1
 ORDER BY provider, model
