-- Keeps $2 as the user's Stripe customer unless they have one already, and returns the one kept
-- (so two first checkouts at once keep one). A customer id already another user's raises
-- unique_violation.
UPDATE user_credits SET stripe_customer_id = coalesce(stripe_customer_id, $2), updated_at = now()
 WHERE user_id = $1
RETURNING stripe_customer_id
