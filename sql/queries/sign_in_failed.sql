-- Counts a failed attempt of person $1; the $2-th failure in a row locks them for $3 and restarts the count.
UPDATE users
   SET failed_login_attempts = CASE WHEN failed_login_attempts + 1 >= $2 THEN 0 ELSE failed_login_attempts + 1 END,
       locked_until = CASE WHEN failed_login_attempts + 1 >= $2 THEN now() + $3::interval ELSE locked_until END,
       updated_at = now()
 WHERE id = $1
RETURNING locked_until > now() AS locked
