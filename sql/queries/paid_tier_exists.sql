-- A row when $1 is a paid tier.
SELECT 1 FROM subscription_tiers WHERE tier = $1 AND tier <> 'trial'
