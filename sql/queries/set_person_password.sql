-- Person $1's new password hash $2: the lockout ends, and every other one-time reset token of theirs is spent.
WITH spent AS (
    UPDATE user_tokens SET used_at = now() WHERE user_id = $1 AND purpose = 'reset_password' AND used_at IS NULL
)
UPDATE users SET password_hash = $2, password_changed_at = now(), failed_login_attempts = 0, locked_until = NULL,
                 updated_at = now()
 WHERE id = $1
