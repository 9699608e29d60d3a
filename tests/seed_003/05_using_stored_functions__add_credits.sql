-- seed 003, "Using Stored Functions" / "Add Credits", verbatim.
-- Purchase credits
SELECT * FROM add_user_credits(
  'USER_UUID'::uuid,           -- user_id
  100.00,                       -- amount
  'purchase',                   -- transaction_type
  'pi_stripe_123',              -- payment_intent_id
  'Purchased Starter Pack'      -- description
);

-- Returns: (success, new_balance, transaction_id)
