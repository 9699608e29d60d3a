-- Adds a credit package, last in shop order, and returns the row; a taken name raises
-- unique_violation, a value out of range check_violation.
INSERT INTO credit_packages (name, credits, price_usd, discount_percentage, description, sort_order)
VALUES ($1, $2, $3, $4, $5, (SELECT coalesce(max(sort_order), 0) + 1 FROM credit_packages))
RETURNING *
