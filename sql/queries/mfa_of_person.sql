-- Person $1's TOTP state, locked: encrypted secret, when enabled, last step used, whether sign-in is locked out.
SELECT mfa_secret_encrypted, mfa_enabled_at, mfa_last_step, coalesce(locked_until > now(), false) AS locked
  FROM users WHERE id = $1 FOR UPDATE
