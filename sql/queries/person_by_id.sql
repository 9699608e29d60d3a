-- Person $1 as they see themselves (no secrets); no row when unknown.
SELECT id, email, name, email_verified_at, mfa_enabled_at, created_at FROM users WHERE id = $1
