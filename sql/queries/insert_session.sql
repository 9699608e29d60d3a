-- A new dashboard session of person $1 in workspace $2 ($3 token hash, $4 device, $5 ip, $6 lifetime, $7 whether
-- its second factor is still due); returns its id.
INSERT INTO sessions (user_id, workspace_id, token_hash, device, ip, expires_at, mfa_pending)
VALUES ($1, $2, $3, left($4, 300), $5::inet, now() + $6::interval, $7)
RETURNING id
