-- Replaces person $1's TOTP ciphertext $2 by $3 (re-encrypted), only if it is still $2; returns the id.
UPDATE users SET mfa_secret_encrypted = $3 WHERE id = $1 AND mfa_secret_encrypted = $2 RETURNING id
