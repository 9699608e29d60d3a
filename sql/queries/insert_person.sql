-- A new person ($1 email, $2 name, $3 argon2id hash; $4 whether the email is already proved, as by
-- an invitation's token); returns them. A taken email (any case) is a unique violation.
INSERT INTO users (email, name, password_hash, email_verified_at) VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END)
RETURNING id, email, name, email_verified_at, mfa_enabled_at, created_at
