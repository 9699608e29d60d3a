-- Person $1 signed in from $2: the failure count restarts, the last sign-in is recorded.
UPDATE users SET failed_login_attempts = 0, locked_until = NULL, last_login_at = now(), last_login_ip = $2::inet,
                 updated_at = now()
 WHERE id = $1
