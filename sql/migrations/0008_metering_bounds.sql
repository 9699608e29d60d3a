-- Metering at the edges: token counts of any size, usage anomalies on record, a settle never
-- above its hold, holds that live as long as their request, and an expired metered hold that
-- still leaves its usage row.
--
-- New project SQLSTATEs: none (LG020-LG029 reserved for metering).

-- An upstream may report any count; the columns hold what the service charged (clamped), which
-- is still far beyond int4 for a request with a 1M-token context and n = 128.
ALTER TABLE llm_usage_log
    ALTER COLUMN prompt_tokens TYPE bigint,
    ALTER COLUMN completion_tokens TYPE bigint,
    ALTER COLUMN total_tokens TYPE bigint;

-- usage_anomaly: why the reported usage was not charged as reported (NULL = charged as
-- reported, or counted locally because nothing was reported). reported_usage: the upstream's
-- `usage` as it arrived (JSON text, cut to 2000 characters), for review; text, not jsonb,
-- because an upstream's NaN or 10^5000 is not valid jsonb.
ALTER TABLE llm_usage_log
    ADD COLUMN usage_anomaly text,
    ADD COLUMN reported_usage text;

-- The usage row a metered hold leaves if it is never settled (written by the proxy at reserve
-- time; NULL for holds made by other callers).
ALTER TABLE credit_holds ADD COLUMN usage_template jsonb;

-- The usage row described by p_usage, written once per request id. Same as 0003's, plus the
-- anomaly columns, and bigint counts.
CREATE OR REPLACE FUNCTION ledger_log_usage(p_usage jsonb, p_hold_id uuid, p_credits numeric,
                                            p_transaction_id bigint, p_success boolean)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_row llm_usage_log;
BEGIN
    v_row := jsonb_populate_record(NULL::llm_usage_log, p_usage);
    IF nullif(btrim(v_row.request_id), '') IS NULL OR v_row.user_id IS NULL OR v_row.model IS NULL THEN
        RAISE EXCEPTION 'a usage row needs request_id, user_id and model'
            USING ERRCODE = 'LG009', DETAIL = p_usage::text;
    END IF;
    INSERT INTO llm_usage_log
        (request_id, user_id, gateway_key_id, provider, model, power_level, prompt_tokens,
         completion_tokens, total_tokens, cost_usd, cost_multiplier, credits_used, latency_ms, success,
         status_code, error_message, is_byok, hold_id, transaction_id, usage_anomaly, reported_usage)
    VALUES
        (v_row.request_id, v_row.user_id, v_row.gateway_key_id, v_row.provider, v_row.model, v_row.power_level,
         coalesce(v_row.prompt_tokens, 0), coalesce(v_row.completion_tokens, 0),
         coalesce(v_row.prompt_tokens, 0) + coalesce(v_row.completion_tokens, 0),
         coalesce(v_row.cost_usd, 0), v_row.cost_multiplier, p_credits, v_row.latency_ms, p_success,
         v_row.status_code, v_row.error_message, coalesce(v_row.is_byok, false), p_hold_id, p_transaction_id,
         v_row.usage_anomaly, left(v_row.reported_usage, 2000))
    ON CONFLICT (request_id) DO NOTHING;
END $$;

-- Returns the user's expired-but-open holds' credits to them (caller holds the user's lock).
-- A metered hold (one with a usage template) that expires unsettled means the request's ending
-- was lost (the process died, or its settle never reached the database): its usage row is
-- written now, failed and charging nothing, so every metered request keeps exactly one row.
CREATE OR REPLACE FUNCTION ledger_expire_user_holds(p_user_id uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer := 0;
    v_freed numeric := 0;
    v_hold  credit_holds;
BEGIN
    FOR v_hold IN
        UPDATE credit_holds SET status = 'expired', resolved_at = now()
         WHERE user_id = p_user_id AND status = 'held' AND expires_at <= now()
        RETURNING *
    LOOP
        v_count := v_count + 1;
        v_freed := v_freed + v_hold.amount;
        IF v_hold.usage_template IS NOT NULL THEN
            PERFORM ledger_log_usage(
                v_hold.usage_template || jsonb_build_object(
                    'error_message', 'the hold expired before the request was settled; nothing was charged',
                    'usage_anomaly', 'hold_expired_unsettled'),
                v_hold.hold_id, 0, NULL, false);
        END IF;
    END LOOP;
    IF v_count > 0 THEN
        UPDATE user_credits SET credits_held = credits_held - v_freed, updated_at = now()
         WHERE user_id = p_user_id;
    END IF;
    RETURN v_count;
END $$;

-- reserve_llm_request: reserve_credits for a metered request, with the usage row it leaves if
-- it is never settled (see ledger_expire_user_holds). Same result as reserve_credits.
CREATE FUNCTION reserve_llm_request(p_user_id uuid, p_amount numeric, p_request_id text, p_ttl interval,
                                    p_description text, p_usage jsonb)
RETURNS TABLE (success boolean, hold_id uuid, available numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v_reserved record;
BEGIN
    SELECT * INTO v_reserved FROM reserve_credits(p_user_id, p_amount, p_request_id, p_ttl, p_description);
    IF v_reserved.success THEN
        UPDATE credit_holds h SET usage_template = p_usage
         WHERE h.hold_id = v_reserved.hold_id AND h.usage_template IS NULL;
    END IF;
    RETURN QUERY SELECT v_reserved.success, v_reserved.hold_id, v_reserved.available;
END $$;

-- extend_credit_hold: keeps a live request's hold open for p_ttl more (never shortens it).
-- Returns false when the hold is no longer open (settled, released, or already expired), which
-- the caller logs; one indexed UPDATE, cheap enough to call every few seconds per stream.
CREATE FUNCTION extend_credit_hold(p_hold_id uuid, p_ttl interval) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_ttl IS NULL OR p_ttl <= interval '0' THEN
        RAISE EXCEPTION 'hold time-to-live must be positive, got %', coalesce(p_ttl::text, 'NULL')
            USING ERRCODE = 'LG009';
    END IF;
    UPDATE credit_holds SET expires_at = greatest(expires_at, now() + p_ttl)
     WHERE hold_id = p_hold_id AND status = 'held' AND expires_at > now();
    RETURN FOUND;
END $$;

-- settle_credit_hold: as in 0002, except that what it charges is bounded by what the user can
-- spend beside their OTHER open holds: an expired hold settled late (its credits already given
-- back) can no longer spend credits another request holds.
CREATE OR REPLACE FUNCTION settle_credit_hold(p_hold_id uuid, p_amount numeric, p_description text DEFAULT NULL)
RETURNS TABLE (success boolean, new_balance numeric, transaction_id bigint, charged numeric, shortfall numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v_user    user_credits;
    v_hold    credit_holds;
    v_user_id uuid;
    v_charge  numeric;
    v_debit   record;
BEGIN
    PERFORM ledger_require_amount(p_amount, true);
    SELECT h.user_id INTO v_user_id FROM credit_holds h WHERE h.hold_id = p_hold_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown hold %', coalesce(p_hold_id::text, 'NULL') USING ERRCODE = 'LG005';
    END IF;
    v_user := ledger_lock_user(v_user_id);
    SELECT * INTO v_hold FROM credit_holds h WHERE h.hold_id = p_hold_id FOR UPDATE;

    IF v_hold.status = 'settled' THEN
        IF v_hold.settle_amount <> p_amount THEN
            RAISE EXCEPTION 'hold % was already settled for %', p_hold_id, v_hold.settle_amount
                USING ERRCODE = 'LG004', HINT = 'A settle is applied once; a retry must repeat the amount.';
        END IF;
        RETURN QUERY
            SELECT true, coalesce(t.balance_after, v_user.balance), v_hold.transaction_id, v_hold.charged,
                   v_hold.settle_amount - v_hold.charged
              FROM (SELECT 1) AS one
              LEFT JOIN credit_transactions t ON t.id = v_hold.transaction_id;
        RETURN;
    END IF;
    IF v_hold.status = 'released' THEN
        RAISE EXCEPTION 'hold % was released; nothing can be charged against it', p_hold_id
            USING ERRCODE = 'LG006';
    END IF;

    IF v_hold.status = 'held' THEN
        UPDATE user_credits SET credits_held = credits_held - v_hold.amount, updated_at = now()
         WHERE user_id = v_user_id
        RETURNING * INTO v_user;
    END IF;

    -- credits_held is now the other holds only
    v_charge := CASE WHEN ledger_spendable(v_user) IS NULL THEN p_amount  -- unlimited
                     ELSE least(p_amount, greatest(ledger_spendable(v_user) - v_user.credits_held, 0)) END;
    IF v_charge > 0 THEN
        SELECT * INTO v_debit
          FROM ledger_write_debit(v_user, v_charge, 'usage', v_hold.request_id,
                                  coalesce(p_description, v_hold.description));
    ELSE
        SELECT true AS success, v_user.balance AS new_balance, NULL::bigint AS transaction_id INTO v_debit;
    END IF;

    UPDATE credit_holds
       SET status = 'settled', settle_amount = p_amount, charged = v_charge,
           transaction_id = v_debit.transaction_id, resolved_at = now()
     WHERE credit_holds.hold_id = p_hold_id;

    RETURN QUERY SELECT true, v_debit.new_balance, v_debit.transaction_id, v_charge, p_amount - v_charge;
END $$;

-- settle_llm_request: as in 0003, and never charges more than the hold: p_credits above the
-- hold's amount is cut to it (the usage row keeps the anomaly). A hold that expired unsettled
-- and left its placeholder usage row gets the real row instead, when its settle arrives late.
CREATE OR REPLACE FUNCTION settle_llm_request(p_hold_id uuid, p_credits numeric, p_usage jsonb)
RETURNS TABLE (success boolean, new_balance numeric, transaction_id bigint, charged numeric, shortfall numeric,
               available numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v_settled record;
    v_user_id uuid := (p_usage ->> 'user_id')::uuid;
    v_hold    credit_holds;
    v_credits numeric := p_credits;
    v_usage   jsonb := p_usage;
BEGIN
    IF p_hold_id IS NULL THEN
        PERFORM ledger_require_amount(p_credits, true);
        IF p_credits <> 0 THEN
            RAISE EXCEPTION 'a request that costs credits must be settled against its hold'
                USING ERRCODE = 'LG009';
        END IF;
        PERFORM ledger_log_usage(p_usage, NULL, 0, NULL, coalesce((p_usage ->> 'success')::boolean, true));
        RETURN QUERY SELECT true, u.balance, NULL::bigint, 0::numeric(20, 6), 0::numeric(20, 6),
                            ledger_spendable(u) - u.credits_held
                       FROM user_credits u WHERE u.user_id = v_user_id;
        RETURN;
    END IF;

    PERFORM ledger_require_amount(p_credits, true);
    SELECT * INTO v_hold FROM credit_holds h WHERE h.hold_id = p_hold_id;
    IF FOUND AND v_credits > v_hold.amount THEN
        v_credits := v_hold.amount;
        v_usage := v_usage || jsonb_build_object(
            'usage_anomaly', concat_ws('; ', nullif(v_usage ->> 'usage_anomaly', ''),
                                       format('cost %s above the hold %s: charged the hold', p_credits, v_hold.amount)));
    END IF;

    SELECT * INTO v_settled
      FROM settle_credit_hold(p_hold_id, v_credits,
                              format('%s via %s (%s)', v_usage ->> 'model', v_usage ->> 'provider',
                                     v_usage ->> 'power_level'));
    DELETE FROM llm_usage_log l
     WHERE l.hold_id = p_hold_id AND l.usage_anomaly = 'hold_expired_unsettled' AND l.transaction_id IS NULL;
    PERFORM ledger_log_usage(v_usage, p_hold_id, v_settled.charged, v_settled.transaction_id,
                             coalesce((v_usage ->> 'success')::boolean, true));
    RETURN QUERY SELECT v_settled.success, v_settled.new_balance, v_settled.transaction_id,
                        v_settled.charged, v_settled.shortfall, ledger_spendable(u) - u.credits_held
                   FROM user_credits u WHERE u.user_id = v_user_id;
END $$;
