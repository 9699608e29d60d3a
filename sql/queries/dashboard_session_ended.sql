-- Whether the dashboard session with nonce $1 was signed out of.
SELECT EXISTS (SELECT 1 FROM dashboard_sign_outs WHERE nonce = $1)
