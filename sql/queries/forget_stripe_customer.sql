-- Forgets a Stripe customer that was deleted: whichever account still holds it (none, if it was
-- forgotten already: redelivered and reordered events change nothing), counted so the next
-- customer is created under a new idempotency key. Returns that account, or no row.
UPDATE user_credits
   SET stripe_customer_id = NULL, stripe_customers_forgotten = stripe_customers_forgotten + 1, updated_at = now()
 WHERE stripe_customer_id = $1
RETURNING user_id
