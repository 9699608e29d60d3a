-- A Stripe customer deleted (in Stripe's dashboard, or by its API) can never be used again: a
-- checkout naming it fails with `resource_missing`. The ledger forgets a deleted customer
-- (customer.deleted, or that failure at checkout) and creates a new one at the next checkout.
-- The count of customers forgotten goes into the idempotency key of that creation: Stripe replays
-- an idempotency key's first answer for 24 hours, so the old key would return the deleted
-- customer again.
ALTER TABLE user_credits ADD COLUMN stripe_customers_forgotten integer NOT NULL DEFAULT 0
    CHECK (stripe_customers_forgotten >= 0);

COMMENT ON COLUMN user_credits.stripe_customers_forgotten IS
    'How many of this account''s Stripe customers were deleted in Stripe and forgotten here; part of the idempotency key that creates the next one.';
