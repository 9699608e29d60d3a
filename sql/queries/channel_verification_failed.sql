-- A wrong code was entered for channel $2 of workspace $1: the fifth spends the code (a new test
-- message brings a new one). Returns the wrong codes entered so far.
UPDATE notification_channels
   SET verification_failures = verification_failures + 1,
       verification_code_encrypted = CASE WHEN verification_failures + 1 >= 5 THEN NULL
                                          ELSE verification_code_encrypted END
 WHERE workspace_id = $1 AND id = $2
RETURNING verification_failures
