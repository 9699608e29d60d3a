-- The power levels on offer, for the catalog cache.
SELECT power_level, cost_multiplier, preferred_providers FROM power_level_configs WHERE is_active
