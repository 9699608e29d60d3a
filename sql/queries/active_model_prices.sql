-- The model prices in force, for the catalog cache: every token type's price and the tiers.
SELECT provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window, max_output_tokens,
       cache_read_usd_per_mtok, cache_write_usd_per_mtok, cache_write_1h_usd_per_mtok, input_audio_usd_per_mtok,
       cache_audio_read_usd_per_mtok, input_image_usd_per_mtok, cache_image_read_usd_per_mtok,
       reasoning_usd_per_mtok, output_audio_usd_per_mtok, output_image_usd_per_mtok, tiers
  FROM model_prices
 WHERE is_active
