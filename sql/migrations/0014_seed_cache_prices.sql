-- The seed's Claude 3 rows get Anthropic's cache prices (as genai-prices 0.2.3 has them for these
-- models: a read, a 5-minute write, a 1-hour write), at every provider the seed priced them for.
-- Without them a cache write was charged as a plain input token, though Anthropic bills it at
-- 1.2-2x: a gateway whose users send cache_control lost money on every such request.
-- (tests/gateway/test_price_catalog.py checks these rows against genai-prices' own price.)
-- Only rows still at the seed's prices, with no cache price and not synced, are completed: an
-- operator's or the catalog's prices are theirs.
UPDATE model_prices AS p
   SET cache_read_usd_per_mtok = c.cache_read,
       cache_write_usd_per_mtok = c.cache_write,
       cache_write_1h_usd_per_mtok = c.cache_write_1h,
       updated_at = now()
  FROM (VALUES
        ('claude-3-opus-20240229',   15.00, 75.00, 1.50, 18.75, 30.00),
        ('claude-3-sonnet-20240229',  3.00, 15.00, 0.30,  3.75,  6.00),
        ('claude-3-haiku-20240307',   0.25,  1.25, 0.03,  0.30,  0.50)
     ) AS c (model, input_price, output_price, cache_read, cache_write, cache_write_1h)
 WHERE p.model = c.model
   AND p.input_usd_per_mtok = c.input_price
   AND p.output_usd_per_mtok = c.output_price
   AND p.cache_read_usd_per_mtok IS NULL
   AND p.cache_write_usd_per_mtok IS NULL
   AND p.cache_write_1h_usd_per_mtok IS NULL
   AND p.synced_prices IS NULL;
