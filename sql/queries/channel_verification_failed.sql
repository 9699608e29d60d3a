-- A wrong code was entered for channel $2 of workspace $1: the fifth spends the code (a new test
-- message brings a new one), so six digits cannot be guessed.
UPDATE notification_channels
   SET verification_failures = verification_failures + 1,
       verification_code_hash = CASE WHEN verification_failures + 1 >= 5 THEN NULL ELSE verification_code_hash END
 WHERE workspace_id = $1 AND id = $2
RETURNING verification_failures
