-- The model prices in force, for the catalog cache.
SELECT provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window, max_output_tokens
  FROM model_prices
 WHERE is_active
