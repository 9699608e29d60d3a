-- A one-time token of person $1 for $2 (verify_email, reset_password): $3 its hash, valid for $4.
INSERT INTO user_tokens (token_hash, user_id, purpose, expires_at) VALUES ($3, $1, $2, now() + $4::interval)
