-- Every rate-limit preset, by name.
SELECT * FROM rate_limit_presets ORDER BY name
