-- Adds a model's price from the catalog, recording what was written (synced_prices) and from where.
INSERT INTO model_prices
       (provider, model, input_usd_per_mtok, output_usd_per_mtok, cache_read_usd_per_mtok,
        cache_write_usd_per_mtok, cache_write_1h_usd_per_mtok, input_audio_usd_per_mtok,
        cache_audio_read_usd_per_mtok, input_image_usd_per_mtok, cache_image_read_usd_per_mtok,
        reasoning_usd_per_mtok, output_audio_usd_per_mtok, output_image_usd_per_mtok, tiers,
        context_window, max_output_tokens, synced_prices, synced_from)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16, $17, $18::jsonb, $19)
