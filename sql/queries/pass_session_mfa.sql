-- The second factor of session $1 was given: it lives $2 from now.
UPDATE sessions SET mfa_pending = false, expires_at = now() + $2::interval WHERE id = $1 AND revoked_at IS NULL
