-- Create a missing balance record: a trial user with a zero balance (seed 003).
-- Variables: user_id (uuid)
INSERT INTO user_credits (user_id, balance, tier, power_level, monthly_allowance, billing_cycle_start)
VALUES (:'user_id', 0.00, 'trial', 'balanced', 100, NOW())
ON CONFLICT (user_id) DO NOTHING;
