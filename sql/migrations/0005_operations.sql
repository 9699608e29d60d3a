-- Operations: the levers operators pull and the maintenance the service runs in the background.

-- set_user_power_level: the user's default power level (LG011 when it is not an active level).
CREATE FUNCTION set_user_power_level(p_user_id uuid, p_power_level text)
RETURNS user_credits
LANGUAGE plpgsql AS $$
DECLARE
    v_user user_credits;
BEGIN
    PERFORM ledger_require_power_level(p_power_level);
    PERFORM ledger_lock_user(p_user_id);
    UPDATE user_credits SET power_level = p_power_level, updated_at = now()
     WHERE user_id = p_user_id
    RETURNING * INTO v_user;
    RETURN v_user;
END $$;

-- roll_billing_cycles: starts the new cycle (credits_used_this_month back to 0, the start moved
-- on by whole months) of up to p_max_users users whose cycle has ended, in user_id order. Each
-- user is rolled by ledger_lock_user, the same code every writer runs, so a run that is
-- interrupted (its transaction rolled back) or races a writer loses and doubles nothing.
-- Returns the number of users rolled.
CREATE FUNCTION roll_billing_cycles(p_max_users integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_user_id uuid;
    v_count   integer := 0;
BEGIN
    FOR v_user_id IN
        SELECT user_id FROM user_credits
         WHERE billing_cycle_start + interval '1 month' <= now()
         ORDER BY user_id
         LIMIT p_max_users
    LOOP
        PERFORM ledger_lock_user(v_user_id);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END $$;
