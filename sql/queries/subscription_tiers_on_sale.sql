-- The paid subscription tiers a user can subscribe to, cheapest first, as users see them.
SELECT tier, display_name, price_usd, monthly_allowance, description
  FROM subscription_tiers
 WHERE is_active AND price_usd > 0
 ORDER BY price_usd, tier
