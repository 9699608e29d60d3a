-- The credit packages a user can buy, in shop order, as users see them.
SELECT id, name, credits, price_usd, discount_percentage, description
  FROM credit_packages
 WHERE is_active
 ORDER BY sort_order, price_usd
