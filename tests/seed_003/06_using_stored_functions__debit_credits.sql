-- seed 003, "Using Stored Functions" / "Debit Credits", verbatim.
-- Use credits for LLM request
SELECT * FROM debit_user_credits(
  'USER_UUID'::uuid,            -- user_id
  2.50,                         -- amount
  'usage',                      -- transaction_type
  'req_abc123',                 -- request_id
  'GPT-4 completion'            -- description
);

-- Returns: (success, new_balance, transaction_id)
