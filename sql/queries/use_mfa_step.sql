-- Records that person $1 used TOTP step $2 (a code works once).
UPDATE users SET mfa_last_step = $2 WHERE id = $1
