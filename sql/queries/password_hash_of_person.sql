-- Person $1's password hash (for a password change's check).
SELECT password_hash FROM users WHERE id = $1
