-- Saves wallet $1's auto top-up: on ($2), threshold $3, package $4, monthly limit $5 (NULL: kept),
-- by person $6. Turning it on clears the failures and their back-off. The wallet's mirror column
-- (the trigger's threshold) follows. Returns whether it is on. (A first row is inserted off: the
-- caller turns on only a wallet that saved a card, which made its row.)
WITH saved AS (
    INSERT INTO auto_top_up_settings AS s (user_id, enabled, threshold, package_id, monthly_limit, updated_by)
    VALUES ($1, false, $3, $4, $5, $6)
    ON CONFLICT (user_id) DO UPDATE
       SET enabled = $2,
           threshold = coalesce(excluded.threshold, s.threshold),
           package_id = coalesce(excluded.package_id, s.package_id),
           monthly_limit = coalesce(excluded.monthly_limit, s.monthly_limit),
           consecutive_failures = CASE WHEN $2 AND NOT s.enabled THEN 0 ELSE s.consecutive_failures END,
           next_try_at = CASE WHEN $2 AND NOT s.enabled THEN NULL ELSE s.next_try_at END,
           disabled_reason = CASE WHEN $2 THEN NULL ELSE s.disabled_reason END,
           updated_by = excluded.updated_by, updated_at = now()
    RETURNING s.user_id, s.enabled, s.threshold
)
UPDATE user_credits u SET auto_top_up_threshold = CASE WHEN saved.enabled THEN saved.threshold END
  FROM saved
 WHERE u.user_id = saved.user_id
RETURNING saved.enabled
