-- seed 003, "Troubleshooting" / "Transaction Failed (Insufficient Balance)", verbatim.
-- Check current balance
SELECT balance FROM user_credits WHERE user_id = 'USER_UUID';

-- Check last transaction
SELECT * FROM credit_transactions
WHERE user_id = 'USER_UUID'
ORDER BY created_at DESC
LIMIT 1;
