-- A provider's model prices as a catalog sync compares them (every price column, the tiers and
-- what the last sync wrote), locked until the sync's transaction ends.
SELECT model, input_usd_per_mtok, output_usd_per_mtok, cache_read_usd_per_mtok, cache_write_usd_per_mtok,
       cache_write_1h_usd_per_mtok, input_audio_usd_per_mtok, cache_audio_read_usd_per_mtok,
       input_image_usd_per_mtok, cache_image_read_usd_per_mtok, reasoning_usd_per_mtok,
       output_audio_usd_per_mtok, output_image_usd_per_mtok, tiers, synced_prices
  FROM model_prices
 WHERE provider = $1
   FOR UPDATE
