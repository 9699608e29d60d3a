-- Why did a debit fail: the user's balance and last transaction (seed 003).
-- Variables: user_id (uuid)
SELECT balance FROM user_credits WHERE user_id = :'user_id';

SELECT * FROM credit_transactions
WHERE user_id = :'user_id'
ORDER BY created_at DESC, id DESC
LIMIT 1;
