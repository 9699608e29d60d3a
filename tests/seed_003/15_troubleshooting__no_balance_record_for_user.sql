-- seed 003, "Troubleshooting" / "No Balance Record for User", verbatim.
-- Create initial balance record
INSERT INTO user_credits (user_id, balance, tier, power_level, monthly_allowance, billing_cycle_start)
VALUES ('USER_UUID', 0.00, 'trial', 'balanced', 100, NOW())
ON CONFLICT (user_id) DO NOTHING;
