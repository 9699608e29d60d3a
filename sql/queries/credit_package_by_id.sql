-- A credit package, on sale or not (a checkout is honoured after it is taken off sale).
SELECT name, credits, price_usd FROM credit_packages WHERE id = $1
