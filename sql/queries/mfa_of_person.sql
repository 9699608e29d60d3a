-- Person $1's TOTP state, locked: encrypted secret, when enabled, last step used.
SELECT mfa_secret_encrypted, mfa_enabled_at, mfa_last_step FROM users WHERE id = $1 FOR UPDATE
