-- People with a stored TOTP secret, by id after $1, at most $2: id and the secret's ciphertext.
SELECT id, mfa_secret_encrypted FROM users
 WHERE mfa_secret_encrypted IS NOT NULL AND id > $1
 ORDER BY id
 LIMIT $2
