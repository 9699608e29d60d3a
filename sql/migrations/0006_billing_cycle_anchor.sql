-- Billing cycles: one definition of "the current cycle", kept by an anchor as Stripe keeps a
-- billing anchor.
--
-- A user's cycles are the instants anchor + k months (k any integer), computed on the anchor's
-- UTC wall-clock time, so the day of month is kept and clamped to a shorter month's last day:
-- anchor Jan 31 gives Feb 28 (29 in a leap year), Mar 31, Apr 30, May 31. The cycle containing t
-- is [anchor + k months, anchor + (k + 1) months) for the one k with start <= t < end; the cycles
-- tile time with no gap and no overlap, whatever the session's TimeZone.
--
-- user_credits.billing_cycle_start is the start of the cycle the row's credits_used_this_month
-- belongs to. Every writer locks the user with ledger_lock_user, which moves it to the current
-- cycle (never by zero months, straight to the current cycle however long the user was idle) and
-- resets credits_used_this_month, exactly once per new cycle. Every read goes through
-- ledger_user_cycle, which reports what that writer would leave, so reads and writes agree.
--
-- New project SQLSTATE:
--   LG012 invalid billing cycle (an infinite anchor or start, or a cycle start far in the future)

-- The month arithmetic: anchor + k months, on UTC wall-clock time (a timestamptz + interval
-- would use the session's TimeZone and move with its DST rules). Raises LG012 for an infinite
-- anchor.
CREATE FUNCTION ledger_cycle_shift(p_anchor timestamptz, p_months integer) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    IF NOT isfinite(p_anchor) THEN
        RAISE EXCEPTION 'a billing cycle anchor must be a finite time, got %', p_anchor USING ERRCODE = 'LG012';
    END IF;
    RETURN ((p_anchor AT TIME ZONE 'UTC') + make_interval(months => p_months)) AT TIME ZONE 'UTC';
END $$;

-- The k of the cycle containing p_at: the one integer with
-- anchor + k months <= p_at < anchor + (k + 1) months (k < 0 before the anchor). Raises LG012
-- for an infinite anchor or time.
CREATE FUNCTION ledger_cycle_index(p_anchor timestamptz, p_at timestamptz) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    v_anchor timestamp;
    v_at     timestamp;
    v_months integer;
BEGIN
    IF NOT isfinite(p_anchor) OR NOT isfinite(p_at) THEN
        RAISE EXCEPTION 'a billing cycle needs finite times, got anchor % at %', p_anchor, p_at
            USING ERRCODE = 'LG012';
    END IF;
    v_anchor := p_anchor AT TIME ZONE 'UTC';
    v_at := p_at AT TIME ZONE 'UTC';
    -- anchor + v_months months falls in p_at's calendar month, so the answer is v_months or the one before
    v_months := (extract(year FROM v_at) - extract(year FROM v_anchor))::integer * 12
                + (extract(month FROM v_at) - extract(month FROM v_anchor))::integer;
    IF v_anchor + make_interval(months => v_months) > v_at THEN
        v_months := v_months - 1;
    END IF;
    RETURN v_months;
END $$;

-- Start of the cycle containing p_at: the latest anchor + k months <= p_at.
CREATE FUNCTION ledger_cycle_start(p_anchor timestamptz, p_at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT ledger_cycle_shift(p_anchor, ledger_cycle_index(p_anchor, p_at))
$$;

-- End (exclusive) of the cycle containing p_at: the earliest anchor + k months > p_at, which is
-- also the next cycle's start.
CREATE FUNCTION ledger_cycle_end(p_anchor timestamptz, p_at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT ledger_cycle_shift(p_anchor, ledger_cycle_index(p_anchor, p_at) + 1)
$$;

ALTER TABLE user_credits ADD COLUMN billing_cycle_anchor timestamptz;
UPDATE user_credits SET billing_cycle_anchor = billing_cycle_start;
ALTER TABLE user_credits ALTER COLUMN billing_cycle_anchor SET NOT NULL;
COMMENT ON COLUMN user_credits.billing_cycle_anchor IS
    'Cycles start at anchor + k months (UTC, clamped to month ends); billing_cycle_start is always one of them.';

-- Keeps billing_cycle_start on its anchor's grid: a row inserted without an anchor is anchored at
-- its cycle start, and a start written by hand (an operator's UPDATE, seed 003's insert) that is
-- not one of the anchor's cycle starts becomes the new anchor. A roll moves the start along the
-- grid and so keeps the anchor (Jan 31 stays the anchor through Feb 28).
CREATE FUNCTION ledger_keep_cycle_anchor() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.billing_cycle_anchor IS NULL
       OR ledger_cycle_start(NEW.billing_cycle_anchor, NEW.billing_cycle_start) <> NEW.billing_cycle_start THEN
        NEW.billing_cycle_anchor := NEW.billing_cycle_start;
    END IF;
    -- validates a start written by hand: LG012 when it is not a finite time
    PERFORM ledger_cycle_index(NEW.billing_cycle_anchor, NEW.billing_cycle_start);
    RETURN NEW;
END $$;

CREATE TRIGGER user_credits_keep_cycle_anchor
    BEFORE INSERT OR UPDATE OF billing_cycle_start, billing_cycle_anchor ON user_credits
    FOR EACH ROW EXECUTE FUNCTION ledger_keep_cycle_anchor();

-- The user's current cycle at p_at, as the next writer will leave it: when the stored cycle has
-- ended, the cycle containing p_at with nothing used yet (rolls = true: ledger_lock_user will
-- write exactly this); otherwise the stored cycle and its use. allowance_remaining is NULL for an
-- unlimited allowance. cycle_end is when the allowance resets. The one definition every reader
-- and writer uses.
CREATE FUNCTION ledger_user_cycle(p_user user_credits, p_at timestamptz DEFAULT now())
RETURNS TABLE (cycle_start timestamptz, cycle_end timestamptz, credits_used numeric,
               allowance_remaining numeric, rolls boolean)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_start timestamptz := ledger_cycle_start(p_user.billing_cycle_anchor, p_at);
    v_used  numeric := p_user.credits_used_this_month;
    v_rolls boolean := v_start > p_user.billing_cycle_start;
BEGIN
    IF v_rolls THEN
        v_used := 0;
    ELSE
        -- not due (a start set ahead of p_at, by an invoice, stays the current cycle until it ends)
        v_start := p_user.billing_cycle_start;
    END IF;
    RETURN QUERY SELECT v_start, ledger_cycle_end(p_user.billing_cycle_anchor, v_start), v_used::numeric(20, 6),
                        CASE WHEN p_user.monthly_allowance IS NULL THEN NULL
                             ELSE greatest(p_user.monthly_allowance - v_used, 0)::numeric(20, 6) END,
                        v_rolls;
END $$;

-- Locks and returns the user's row (LG003 when there is none). A billing cycle that has ended is
-- rolled here to the cycle containing now() (ledger_user_cycle): the start moves forward by one or
-- more whole cycles of the anchor, never by zero, and credits_used_this_month is reset, once per
-- new cycle. Every writer therefore sees the allowance of the current cycle.
CREATE OR REPLACE FUNCTION ledger_lock_user(p_user_id uuid) RETURNS user_credits
LANGUAGE plpgsql AS $$
DECLARE
    v_user  user_credits;
    v_cycle record;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'user_id is required' USING ERRCODE = 'LG003';
    END IF;
    SELECT * INTO v_user FROM user_credits WHERE user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown user %', p_user_id
            USING ERRCODE = 'LG003',
                  HINT = 'Create the account first (a user_credits row); credits are never added to an unknown user.';
    END IF;
    SELECT * INTO v_cycle FROM ledger_user_cycle(v_user, now());
    IF v_cycle.rolls THEN
        UPDATE user_credits
           SET billing_cycle_start = v_cycle.cycle_start,
               credits_used_this_month = 0,
               updated_at = now()
         WHERE user_id = p_user_id
        RETURNING * INTO v_user;
    END IF;
    RETURN v_user;
END $$;

-- get_quota_usage_percentage: credits used in the current cycle (ledger_user_cycle: 0 in a cycle
-- that has ended, as the next writer will reset it) as a percentage of the monthly allowance,
-- rounded to 2 places; above 100 once usage has gone on into the purchased balance. 0 for an
-- unlimited or zero allowance. LG003 for an unknown user.
CREATE OR REPLACE FUNCTION get_quota_usage_percentage(p_user_id uuid) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_user user_credits;
    v_used numeric;
BEGIN
    SELECT * INTO v_user FROM user_credits WHERE user_id = p_user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown user %', p_user_id USING ERRCODE = 'LG003';
    END IF;
    IF coalesce(v_user.monthly_allowance, 0) = 0 THEN
        RETURN 0;
    END IF;
    SELECT c.credits_used INTO v_used FROM ledger_user_cycle(v_user, now()) c;
    RETURN round(v_used / v_user.monthly_allowance * 100, 2);
END $$;

-- roll_billing_cycles: starts the new cycle of up to p_max_users users whose cycle has ended
-- (ledger_user_cycle's rule), in user_id order. Each user is rolled by ledger_lock_user, the same
-- code every writer runs, so a run that is interrupted (its transaction rolled back) or races a
-- writer loses and doubles nothing, and a user already rolled is not counted again. Returns the
-- number of users rolled.
CREATE OR REPLACE FUNCTION roll_billing_cycles(p_max_users integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_user_id uuid;
    v_before  timestamptz;
    v_after   timestamptz;
    v_count   integer := 0;
BEGIN
    FOR v_user_id IN
        SELECT user_id FROM user_credits
         -- a cycle lasts 28 days at least: the first test only narrows the scan
         WHERE billing_cycle_start <= now() - interval '27 days'
           AND ledger_cycle_start(billing_cycle_anchor, now()) > billing_cycle_start
         ORDER BY user_id
         LIMIT p_max_users
    LOOP
        -- read under the row lock: a writer that rolled the user meanwhile is seen, not counted again
        SELECT billing_cycle_start INTO v_before FROM user_credits WHERE user_id = v_user_id FOR UPDATE;
        v_after := (ledger_lock_user(v_user_id)).billing_cycle_start;
        IF v_after > v_before THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END $$;

-- set_user_tier: the user's tier and that tier's monthly allowance (LG010 for an unknown tier).
-- With p_cycle_start (a subscription's paid period), a new billing cycle anchored there starts
-- (credits_used_this_month back to 0) only when it is newer than the current cycle's start; an
-- older or equal start (a late or replayed invoice) changes the tier but never moves the cycle
-- back and never resets usage, so one period never grants two allowances. A start more than a
-- day ahead of now(), or not a finite time, raises LG012 and writes nothing.
CREATE OR REPLACE FUNCTION set_user_tier(p_user_id uuid, p_tier text, p_cycle_start timestamptz DEFAULT NULL)
RETURNS user_credits
LANGUAGE plpgsql AS $$
DECLARE
    v_allowance numeric := ledger_tier_allowance(p_tier, true);
    v_user      user_credits;
    v_new_cycle boolean;
BEGIN
    IF p_cycle_start IS NOT NULL AND (NOT isfinite(p_cycle_start) OR p_cycle_start > now() + interval '1 day') THEN
        RAISE EXCEPTION 'billing cycle start % is not a time up to a day from now', p_cycle_start
            USING ERRCODE = 'LG012',
                  HINT = 'Pass the start of the period that was paid for (a Stripe invoice''s period start).';
    END IF;
    v_user := ledger_lock_user(p_user_id);
    v_new_cycle := p_cycle_start IS NOT NULL AND p_cycle_start > v_user.billing_cycle_start;
    UPDATE user_credits
       SET tier = p_tier,
           monthly_allowance = v_allowance,
           billing_cycle_anchor = CASE WHEN v_new_cycle THEN p_cycle_start ELSE billing_cycle_anchor END,
           billing_cycle_start = CASE WHEN v_new_cycle THEN p_cycle_start ELSE billing_cycle_start END,
           credits_used_this_month = CASE WHEN v_new_cycle THEN 0 ELSE credits_used_this_month END,
           updated_at = now()
     WHERE user_id = p_user_id
    RETURNING * INTO v_user;
    RETURN v_user;
END $$;
