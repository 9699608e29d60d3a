-- Ends the dashboard session with nonce $1 (signed out), which would have expired at $2; the rows
-- of sessions past their expiry go at the same time, so the table never grows beyond the live ones.
WITH pruned AS (DELETE FROM dashboard_sign_outs WHERE expires_at < now())
INSERT INTO dashboard_sign_outs (nonce, expires_at) VALUES ($1, $2)
ON CONFLICT (nonce) DO NOTHING
