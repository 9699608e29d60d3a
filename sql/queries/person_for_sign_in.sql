-- The person with email $1 (any case), locked for the attempt: what sign-in checks.
SELECT id, email, name, password_hash, mfa_enabled_at, failed_login_attempts, locked_until, locked_until > now() AS locked
  FROM users WHERE lower(email) = lower($1)
   FOR UPDATE
