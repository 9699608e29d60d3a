-- Credit packages in shop order: the ones on sale, or every one when $1.
SELECT id, name, credits, price_usd, discount_percentage, description, stripe_price_id, sort_order, is_active
  FROM credit_packages
 WHERE is_active OR $1
 ORDER BY sort_order, price_usd
