-- Sets workspace $1's low-balance threshold ($2; NULL turns it off). Returns what is left to spend
-- now, so the caller can tell at once when it is already below.
UPDATE user_credits SET low_balance_threshold = $2, updated_at = now()
 WHERE user_id = $1
RETURNING ledger_spendable(user_credits) AS spendable
