-- Model prices by provider and model, every token type's and the tiers, and the catalog each was
-- last synced from: the active ones, or every one when $1.
SELECT provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window, max_output_tokens, is_active,
       cache_read_usd_per_mtok, cache_write_usd_per_mtok, cache_write_1h_usd_per_mtok, input_audio_usd_per_mtok,
       cache_audio_read_usd_per_mtok, input_image_usd_per_mtok, cache_image_read_usd_per_mtok,
       reasoning_usd_per_mtok, output_audio_usd_per_mtok, output_image_usd_per_mtok, tiers, synced_from
  FROM model_prices
 WHERE is_active OR $1
 ORDER BY provider, model
