-- When user $1's current billing cycle started, as stored.
SELECT billing_cycle_start FROM user_credits WHERE user_id = $1
