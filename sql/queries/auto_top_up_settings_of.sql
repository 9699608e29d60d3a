-- The auto top-up settings of wallet $1 (no row: never set), with the package's name, credits and price.
SELECT s.user_id, s.enabled, s.threshold, s.package_id, s.monthly_limit, s.payment_method_id,
       s.consecutive_failures, s.next_try_at, s.disabled_reason, s.updated_at,
       p.name AS package_name, p.credits AS package_credits, p.price_usd AS package_price_usd
  FROM auto_top_up_settings s
  LEFT JOIN credit_packages p ON p.id = s.package_id
 WHERE s.user_id = $1
