-- The power levels a user can choose, cheapest first, as users see them.
SELECT power_level, cost_multiplier, max_latency_ms, description
  FROM power_level_configs
 WHERE is_active
 ORDER BY cost_multiplier, power_level
