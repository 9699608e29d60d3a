-- Sets a model's prices from the catalog, recording what was written; the operator's columns
-- (context_window, max_output_tokens, is_active) stay as they are.
UPDATE model_prices
   SET input_usd_per_mtok = $3, output_usd_per_mtok = $4, cache_read_usd_per_mtok = $5,
       cache_write_usd_per_mtok = $6, cache_write_1h_usd_per_mtok = $7, input_audio_usd_per_mtok = $8,
       cache_audio_read_usd_per_mtok = $9, input_image_usd_per_mtok = $10, cache_image_read_usd_per_mtok = $11,
       reasoning_usd_per_mtok = $12, output_audio_usd_per_mtok = $13, output_image_usd_per_mtok = $14,
       tiers = $15::jsonb, synced_prices = $16::jsonb, synced_from = $17, updated_at = now()
 WHERE provider = $1 AND model = $2
