-- The owner of gateway key $1 when it is still active, unexpired and user $2's, and the session
-- with nonce $3 was not signed out of: a dashboard session signed in with that key lasts only while
-- this answers (key id, user id, power level, whether the workspace is personal).
SELECT k.id, k.user_id, u.power_level, w.kind = 'personal' AS personal
  FROM gateway_api_keys k JOIN user_credits u USING (user_id) JOIN workspaces w ON w.id = k.user_id
 WHERE k.id = $1 AND k.user_id = $2 AND k.is_active AND (k.expires_at IS NULL OR k.expires_at > now())
   AND NOT EXISTS (SELECT 1 FROM dashboard_sign_outs WHERE nonce = $3)
