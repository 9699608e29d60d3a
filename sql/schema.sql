-- The ledger's schema: every migration in sql/migrations applied to an empty database, as pg_dump
-- --schema-only prints it. Written by `ledger db schema`; never edited by hand (a test fails when
-- it and the migrations disagree): a change is a new migration, then `ledger db schema`.

--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: add_user_credits(uuid, numeric, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.add_user_credits(p_user_id uuid, p_amount numeric, p_transaction_type text, p_payment_intent_id text DEFAULT NULL::text, p_description text DEFAULT NULL::text) RETURNS TABLE(success boolean, new_balance numeric, transaction_id bigint)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_user    user_credits;
    v_first   credit_transactions;
    v_balance numeric;
    v_txn_id  bigint;
BEGIN
    PERFORM ledger_require_amount(p_amount);
    IF p_transaction_type IS NULL OR p_transaction_type NOT IN ('purchase', 'bonus', 'admin_adjustment', 'refund') THEN
        RAISE EXCEPTION 'transaction type % cannot add credits', coalesce(quote_literal(p_transaction_type), 'NULL')
            USING ERRCODE = 'LG002',
                  HINT = 'add_user_credits takes purchase, bonus, admin_adjustment or refund; usage is a debit.';
    END IF;
    IF p_transaction_type = 'purchase' AND nullif(btrim(p_payment_intent_id), '') IS NULL THEN
        RAISE EXCEPTION 'a purchase needs its payment intent id'
            USING ERRCODE = 'LG008', HINT = 'Pass the Stripe payment intent so a retried webhook cannot credit twice.';
    END IF;

    v_user := ledger_lock_user(p_user_id);
    v_first := ledger_find_replay(p_user_id, p_amount, p_transaction_type, p_payment_intent_id, false);
    IF v_first.id IS NOT NULL THEN
        RETURN QUERY SELECT true, v_first.balance_after, v_first.id;
        RETURN;
    END IF;

    PERFORM set_config('ledger.balance_writer', 'on', true);
    UPDATE user_credits SET balance = balance + p_amount, updated_at = now()
     WHERE user_id = p_user_id
    RETURNING balance INTO v_balance;
    PERFORM set_config('ledger.balance_writer', 'off', true);

    INSERT INTO credit_transactions
        (user_id, transaction_type, amount, balance_after, description, reference_id, payment_intent_id)
    VALUES (p_user_id, p_transaction_type, p_amount, v_balance, p_description, p_payment_intent_id,
            CASE WHEN p_transaction_type IN ('purchase', 'refund') THEN p_payment_intent_id END)
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_txn_id;
    IF v_txn_id IS NULL THEN
        RAISE EXCEPTION 'reference % (%) is already used by another transaction', p_payment_intent_id, p_transaction_type
            USING ERRCODE = 'LG004', HINT = 'A reference identifies one operation on one account; use a new one.';
    END IF;

    RETURN QUERY SELECT true, v_balance, v_txn_id;
END $$;


--
-- Name: begin_llm_request(text, text, jsonb, boolean, text, interval, text, jsonb, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.begin_llm_request(p_key_hash text, p_power_level text, p_holds jsonb, p_byok boolean, p_request_id text, p_ttl interval, p_description text, p_usage jsonb, p_facts jsonb) RETURNS TABLE(key_id uuid, user_id uuid, power_level text, hold_state text, hold_id uuid, available numeric, own_keys jsonb, controls jsonb, allowed_providers text[])
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_found    record;
    v_key      gateway_api_keys;
    v_own_keys jsonb;
    v_level    text;
    v_entry    jsonb;
    v_usage    jsonb;
    v_refusal  jsonb;
    v_held     record;
BEGIN
    SELECT k AS key, coalesce(p_power_level, u.power_level) AS level INTO v_found
      FROM gateway_api_keys k JOIN user_credits u ON u.user_id = k.user_id
     WHERE k.key_hash = p_key_hash AND k.is_active AND (k.expires_at IS NULL OR k.expires_at > now());
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_key := v_found.key;
    v_level := v_found.level;
    IF v_key.last_used_at IS NULL OR v_key.last_used_at < now() - interval '1 minute' THEN
        UPDATE gateway_api_keys g SET last_used_at = now()
         WHERE g.id = v_key.id AND (g.last_used_at IS NULL OR g.last_used_at < now() - interval '1 minute');
    END IF;
    v_usage := p_usage || jsonb_build_object('user_id', v_key.user_id, 'gateway_key_id', v_key.id,
                                             'power_level', v_level, 'success', false);

    IF v_key.allowed_models IS NOT NULL OR v_key.allowed_providers IS NOT NULL OR v_key.allowed_ips IS NOT NULL THEN
        v_refusal := ledger_key_refusal(v_key, p_facts);
        IF v_refusal IS NOT NULL THEN
            PERFORM ledger_log_refusal(v_usage, 'key_restriction', v_refusal, 403);
            RETURN QUERY SELECT v_key.id, v_key.user_id, v_level, 'forbidden'::text, NULL::uuid, NULL::numeric,
                                NULL::jsonb, jsonb_build_object('refusal', v_refusal), v_key.allowed_providers;
            RETURN;
        END IF;
    END IF;

    IF p_byok THEN
        SELECT jsonb_agg(jsonb_build_object('id', d.id, 'provider', d.provider,
                                            'encrypted_key', encode(d.encrypted_key, 'base64')))
          INTO v_own_keys
          FROM (SELECT DISTINCT ON (p.provider) p.id, p.provider, p.encrypted_key
                  FROM user_provider_keys p
                 WHERE p.user_id = v_key.user_id AND p.is_active
                 ORDER BY p.provider, p.is_default DESC, p.created_at DESC) d;
        IF v_own_keys IS NOT NULL THEN
            RETURN QUERY SELECT v_key.id, v_key.user_id, v_level, 'byok'::text, NULL::uuid, NULL::numeric, v_own_keys,
                                NULL::jsonb, v_key.allowed_providers;
            RETURN;
        END IF;
    END IF;
    v_entry := p_holds -> v_level;
    IF v_entry IS NULL THEN
        RETURN QUERY SELECT v_key.id, v_key.user_id, v_level, 'unknown_level'::text, NULL::uuid, NULL::numeric,
                            NULL::jsonb, NULL::jsonb, v_key.allowed_providers;
        RETURN;
    END IF;
    SELECT * INTO v_held
      FROM ledger_hold_under_controls(v_key, (v_entry ->> 'credits')::numeric, p_request_id, p_ttl, p_description,
                                      v_usage || jsonb_build_object('cost_multiplier', v_entry -> 'multiplier'),
                                      p_facts);
    RETURN QUERY SELECT v_key.id, v_key.user_id, v_level, v_held.hold_state, v_held.hold_id, v_held.available,
                        NULL::jsonb, v_held.controls, v_key.allowed_providers;
END $$;


--
-- Name: controls_over_key(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.controls_over_key(p_key_id uuid) RETURNS TABLE(kind text, id uuid, scope_type text, scope_id text, model_pattern text, period text, hard boolean, amount numeric, spent numeric, held numeric, remaining numeric, resets_at timestamp with time zone, strategy text, requests integer, window_seconds integer, tokens_per_minute bigint, max_concurrent integer, in_flight integer, preset text)
    LANGUAGE sql STABLE
    AS $$
    WITH k AS (SELECT * FROM gateway_api_keys WHERE id = p_key_id)
    SELECT 'budget', b.id, b.scope_type, b.scope_id, b.model_pattern, b.period, b.hard, b.amount,
           CASE WHEN ledger_period_start(b.period, now(), b.period_start) > b.period_start THEN 0 ELSE b.spent END,
           b.held,
           greatest(b.amount - b.held
                    - CASE WHEN ledger_period_start(b.period, now(), b.period_start) > b.period_start THEN 0
                           ELSE b.spent END, 0),
           ledger_period_end(b.period, ledger_period_start(b.period, now(), b.period_start)),
           NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM budgets b, k
     WHERE b.workspace_id = k.user_id
       AND (b.scope_type IN ('workspace', 'end_user')
            OR (b.scope_type = 'project' AND b.scope_id = k.project_id::text)
            OR (b.scope_type = 'member' AND b.scope_id = k.created_by::text)
            OR (b.scope_type = 'key' AND b.scope_id = k.id::text))
    UNION ALL
    SELECT 'rate_limit', r.id, r.scope_type, r.scope_id, r.model_pattern, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           r.strategy, r.requests, r.window_seconds, r.tokens_per_minute, r.max_concurrent, r.in_flight, r.preset
      FROM rate_limits_effective r, k
     WHERE r.workspace_id = k.user_id
       AND (r.scope_type IN ('workspace', 'end_user')
            OR (r.scope_type = 'project' AND r.scope_id = k.project_id::text)
            OR (r.scope_type = 'member' AND r.scope_id = k.created_by::text)
            OR (r.scope_type = 'key' AND r.scope_id = k.id::text))
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: user_credits; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_credits (
    user_id uuid DEFAULT gen_random_uuid() NOT NULL,
    email text,
    balance numeric(20,6) DEFAULT 0 NOT NULL,
    tier text DEFAULT 'trial'::text NOT NULL,
    power_level text DEFAULT 'balanced'::text NOT NULL,
    monthly_allowance numeric(20,6) DEFAULT 0,
    credits_used_this_month numeric(20,6) DEFAULT 0 NOT NULL,
    credits_held numeric(20,6) DEFAULT 0 NOT NULL,
    billing_cycle_start timestamp with time zone DEFAULT now() NOT NULL,
    stripe_customer_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    billing_cycle_anchor timestamp with time zone NOT NULL,
    stripe_customers_forgotten integer DEFAULT 0 NOT NULL,
    low_balance_threshold numeric(20,6),
    granted_remaining numeric(20,6) DEFAULT 0 NOT NULL,
    auto_top_up_threshold numeric(20,6),
    CONSTRAINT user_credits_auto_top_up_threshold_check CHECK (((auto_top_up_threshold IS NULL) OR (auto_top_up_threshold > (0)::numeric))),
    CONSTRAINT user_credits_balance_check CHECK ((balance >= (0)::numeric)),
    CONSTRAINT user_credits_credits_held_check CHECK ((credits_held >= (0)::numeric)),
    CONSTRAINT user_credits_credits_used_this_month_check CHECK ((credits_used_this_month >= (0)::numeric)),
    CONSTRAINT user_credits_granted_remaining_check CHECK ((granted_remaining >= (0)::numeric)),
    CONSTRAINT user_credits_grants_within_balance CHECK ((granted_remaining <= balance)),
    CONSTRAINT user_credits_low_balance_threshold_check CHECK (((low_balance_threshold IS NULL) OR (low_balance_threshold > (0)::numeric))),
    CONSTRAINT user_credits_monthly_allowance_check CHECK ((monthly_allowance >= (0)::numeric)),
    CONSTRAINT user_credits_stripe_customers_forgotten_check CHECK ((stripe_customers_forgotten >= 0))
);


--
-- Name: COLUMN user_credits.billing_cycle_anchor; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.user_credits.billing_cycle_anchor IS 'Cycles start at anchor + k months (UTC, clamped to month ends); billing_cycle_start is always one of them.';


--
-- Name: COLUMN user_credits.stripe_customers_forgotten; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.user_credits.stripe_customers_forgotten IS 'How many of this account''s Stripe customers were deleted in Stripe and forgotten here; part of the idempotency key that creates the next one.';


--
-- Name: COLUMN user_credits.auto_top_up_threshold; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.user_credits.auto_top_up_threshold IS 'Mirror of auto_top_up_settings.threshold while auto top-up is on and can charge; NULL otherwise.';


--
-- Name: create_ledger_user(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.create_ledger_user(p_email text DEFAULT NULL::text, p_tier text DEFAULT 'trial'::text, p_power_level text DEFAULT 'balanced'::text) RETURNS public.user_credits
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_allowance numeric := ledger_tier_allowance(p_tier);
    v_user      user_credits;
BEGIN
    PERFORM ledger_require_power_level(p_power_level);
    INSERT INTO user_credits (email, tier, power_level, monthly_allowance, billing_cycle_start)
    VALUES (p_email, p_tier, p_power_level, v_allowance, now())
    RETURNING * INTO v_user;
    RETURN v_user;
END $$;


--
-- Name: create_self_service_wallet(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.create_self_service_wallet(p_email text DEFAULT NULL::text) RETURNS public.user_credits
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_user user_credits;
BEGIN
    v_user := create_ledger_user(p_email, 'trial', 'balanced');
    UPDATE user_credits SET monthly_allowance = 0, updated_at = now()
     WHERE user_id = v_user.user_id
    RETURNING * INTO v_user;
    RETURN v_user;
END $$;


--
-- Name: FUNCTION create_self_service_wallet(p_email text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.create_self_service_wallet(p_email text) IS 'Creates a wallet (and its workspace) on the trial tier with no free allowance: nothing to farm by signing up again.';


--
-- Name: debit_user_credits(uuid, numeric, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.debit_user_credits(p_user_id uuid, p_amount numeric, p_transaction_type text, p_request_id text DEFAULT NULL::text, p_description text DEFAULT NULL::text) RETURNS TABLE(success boolean, new_balance numeric, transaction_id bigint)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_user      user_credits;
    v_first     credit_transactions;
    v_spendable numeric;
BEGIN
    PERFORM ledger_require_amount(p_amount);
    IF p_transaction_type IS NULL OR p_transaction_type NOT IN ('usage', 'refund', 'admin_adjustment') THEN
        RAISE EXCEPTION 'transaction type % cannot debit credits', coalesce(quote_literal(p_transaction_type), 'NULL')
            USING ERRCODE = 'LG002',
                  HINT = 'debit_user_credits takes usage, refund or admin_adjustment.';
    END IF;
    IF p_transaction_type = 'usage' AND nullif(btrim(p_request_id), '') IS NULL THEN
        RAISE EXCEPTION 'a usage debit needs its request id'
            USING ERRCODE = 'LG008', HINT = 'Pass the request id so a retried request cannot be charged twice.';
    END IF;

    v_user := ledger_lock_user(p_user_id);
    v_first := ledger_find_replay(p_user_id, p_amount, p_transaction_type, p_request_id, true);
    IF v_first.id IS NOT NULL THEN
        RETURN QUERY SELECT true, v_first.balance_after, v_first.id;
        RETURN;
    END IF;

    v_spendable := CASE p_transaction_type WHEN 'usage' THEN ledger_spendable(v_user)
                                           WHEN 'refund' THEN v_user.balance - v_user.granted_remaining
                                           ELSE v_user.balance END;
    IF v_spendable IS NOT NULL AND p_amount > v_spendable - v_user.credits_held THEN
        RETURN QUERY SELECT false, v_user.balance, NULL::bigint;
        RETURN;
    END IF;

    RETURN QUERY SELECT * FROM ledger_write_debit(v_user, p_amount, p_transaction_type, p_request_id, p_description);
END $$;


--
-- Name: evaluate_alert_rules(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.evaluate_alert_rules(OUT opened integer, OUT resolved integer) RETURNS record
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_rule  alert_rules;
    v_value numeric;
    v_open  uuid;
BEGIN
    opened := 0;
    resolved := 0;
    FOR v_rule IN SELECT * FROM alert_rules WHERE is_active ORDER BY id FOR UPDATE SKIP LOCKED LOOP
        v_value := ledger_alert_value(v_rule);
        UPDATE alert_rules SET last_value = v_value, last_evaluated_at = now() WHERE id = v_rule.id;
        SELECT id INTO v_open FROM alert_events WHERE rule_id = v_rule.id AND resolved_at IS NULL;
        IF v_open IS NULL THEN
            IF ledger_open_alert(v_rule, v_value) IS NOT NULL THEN
                opened := opened + 1;
            END IF;
        ELSIF v_value IS NOT NULL AND NOT ledger_alert_breaks(v_rule, v_value) THEN
            IF ledger_resolve_alert(v_open, NULL, NULL) THEN
                resolved := resolved + 1;
            END IF;
        END IF;
    END LOOP;
END $$;


--
-- Name: expire_credit_grants(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.expire_credit_grants(p_batch integer DEFAULT 1000) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_lot   credit_grants;
    v_user  user_credits;
    v_count integer := 0;
    v_bal   numeric;
    v_txn   bigint;
BEGIN
    FOR v_lot IN SELECT * FROM credit_grants g
                  WHERE g.remaining > 0 AND g.expires_at <= now()
                  ORDER BY g.user_id, g.id
                  LIMIT p_batch LOOP
        v_user := ledger_lock_user(v_lot.user_id);
        SELECT * INTO v_lot FROM credit_grants g WHERE g.id = v_lot.id FOR UPDATE;
        CONTINUE WHEN v_lot.remaining = 0;
        PERFORM set_config('ledger.balance_writer', 'on', true);
        UPDATE user_credits
           SET balance = balance - v_lot.remaining, granted_remaining = granted_remaining - v_lot.remaining,
               updated_at = now()
         WHERE user_id = v_lot.user_id
        RETURNING balance INTO v_bal;
        PERFORM set_config('ledger.balance_writer', 'off', true);
        INSERT INTO credit_transactions (user_id, transaction_type, amount, balance_after, description, reference_id)
        VALUES (v_lot.user_id, 'expiry', -v_lot.remaining, v_bal,
                format('%s granted %s expired', v_lot.kind, to_char(v_lot.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')),
                'grant:' || v_lot.id)
        RETURNING id INTO v_txn;
        UPDATE credit_grants SET remaining = 0, expired_at = now(), expiry_transaction_id = v_txn WHERE id = v_lot.id;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END $$;


--
-- Name: FUNCTION expire_credit_grants(p_batch integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.expire_credit_grants(p_batch integer) IS 'Expires due grant lots, each by one expiry transaction; run by maintenance, safe to run again.';


--
-- Name: expire_credit_holds(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.expire_credit_holds(p_max_users integer DEFAULT 1000) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_user_id uuid;
    v_total   integer := 0;
BEGIN
    FOR v_user_id IN
        SELECT DISTINCT h.user_id FROM credit_holds h
         WHERE h.status = 'held' AND h.expires_at <= now()
         ORDER BY h.user_id
         LIMIT p_max_users
    LOOP
        PERFORM ledger_lock_user(v_user_id);
        v_total := v_total + ledger_expire_user_holds(v_user_id);
    END LOOP;
    RETURN v_total;
END $$;


--
-- Name: extend_credit_hold(uuid, interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.extend_credit_hold(p_hold_id uuid, p_ttl interval) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF p_ttl IS NULL OR p_ttl <= interval '0' THEN
        RAISE EXCEPTION 'hold time-to-live must be positive, got %', coalesce(p_ttl::text, 'NULL')
            USING ERRCODE = 'LG009';
    END IF;
    UPDATE credit_holds SET expires_at = greatest(expires_at, now() + p_ttl)
     WHERE hold_id = p_hold_id AND status = 'held' AND expires_at > now();
    RETURN FOUND;
END $$;


--
-- Name: fail_llm_request(uuid, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.fail_llm_request(p_hold_id uuid, p_usage jsonb) RETURNS numeric
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_released numeric := 0;
BEGIN
    IF p_hold_id IS NOT NULL THEN
        SELECT released INTO v_released FROM release_credit_hold(p_hold_id);
    END IF;
    PERFORM ledger_log_usage(p_usage, p_hold_id, 0, NULL, false);
    RETURN v_released;
END $$;


--
-- Name: get_quota_usage_percentage(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.get_quota_usage_percentage(p_user_id uuid) RETURNS numeric
    LANGUAGE plpgsql STABLE
    AS $$
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


--
-- Name: grant_credits(uuid, numeric, text, text, timestamp with time zone, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.grant_credits(p_user_id uuid, p_amount numeric, p_transaction_type text, p_reference text, p_expires_at timestamp with time zone, p_priority integer, p_description text DEFAULT NULL::text) RETURNS TABLE(success boolean, new_balance numeric, transaction_id bigint, grant_id bigint)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_added record;
    v_lot   bigint;
    v_first credit_transactions;
BEGIN
    IF p_transaction_type IS NULL OR p_transaction_type NOT IN ('bonus', 'admin_adjustment') THEN
        RAISE EXCEPTION 'a grant is a bonus or an admin_adjustment, not %', coalesce(p_transaction_type, 'NULL')
            USING ERRCODE = 'LG002';
    END IF;
    -- a replay answers as the first call did, whenever it comes (its expiry may have passed since)
    IF p_reference IS NOT NULL THEN
        PERFORM ledger_lock_user(p_user_id);
        v_first := ledger_find_replay(p_user_id, p_amount, p_transaction_type, p_reference, false);
        IF v_first.id IS NOT NULL THEN
            SELECT g.id INTO v_lot FROM credit_grants g WHERE g.transaction_id = v_first.id;
            IF EXISTS (SELECT 1 FROM credit_grants g WHERE g.id = v_lot
                          AND (g.expires_at IS DISTINCT FROM p_expires_at OR g.priority <> coalesce(p_priority, 50))) THEN
                RAISE EXCEPTION 'reference % was already used for a grant with other terms', p_reference
                    USING ERRCODE = 'LG004', HINT = 'One reference is one grant: give this grant a reference of its own.';
            END IF;
            RETURN QUERY SELECT true, v_first.balance_after, v_first.id, v_lot;
            RETURN;
        END IF;
    END IF;
    IF p_priority IS NOT NULL AND p_priority NOT BETWEEN 0 AND 100 THEN
        RAISE EXCEPTION 'a grant''s priority is 0 (spent first) to 100, not %', p_priority
            USING ERRCODE = 'LG009', HINT = 'Leave it out for 50.';
    END IF;
    IF p_expires_at IS NOT NULL AND p_expires_at <= now() THEN
        RAISE EXCEPTION 'a grant''s expiry must be in the future (% is not)', p_expires_at
            USING ERRCODE = 'LG009';
    END IF;
    SELECT * INTO v_added FROM add_user_credits(p_user_id, p_amount, p_transaction_type, p_reference, p_description);
    UPDATE credit_grants g
       SET expires_at = p_expires_at, priority = coalesce(p_priority, 50)
     WHERE g.transaction_id = v_added.transaction_id AND g.created_at = now()  -- made by this call, not a replay
    RETURNING g.id INTO v_lot;
    IF v_lot IS NULL THEN
        SELECT g.id INTO v_lot FROM credit_grants g WHERE g.transaction_id = v_added.transaction_id;
    END IF;
    RETURN QUERY SELECT v_added.success, v_added.new_balance, v_added.transaction_id, v_lot;
END $$;


--
-- Name: FUNCTION grant_credits(p_user_id uuid, p_amount numeric, p_transaction_type text, p_reference text, p_expires_at timestamp with time zone, p_priority integer, p_description text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.grant_credits(p_user_id uuid, p_amount numeric, p_transaction_type text, p_reference text, p_expires_at timestamp with time zone, p_priority integer, p_description text) IS 'Adds granted credits with an expiry and a priority; one reference is one grant.';


--
-- Name: hold_disputed_credits(uuid, numeric, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.hold_disputed_credits(p_user_id uuid, p_credits numeric, p_dispute_id text) RETURNS TABLE(hold_id uuid, held numeric)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_user   user_credits;
    v_first  credit_holds;
    v_empty  ledger_empty_applications;
    v_amount numeric;
    v_hold   uuid;
BEGIN
    PERFORM ledger_require_amount(p_credits);
    IF nullif(btrim(p_dispute_id), '') IS NULL THEN
        RAISE EXCEPTION 'a dispute hold needs its dispute id' USING ERRCODE = 'LG008';
    END IF;
    v_user := ledger_lock_user(p_user_id);
    SELECT * INTO v_first FROM credit_holds h WHERE h.request_id = 'dispute:' || p_dispute_id;
    IF FOUND THEN
        PERFORM ledger_require_same_account(p_dispute_id, v_first.user_id, p_user_id);
        RETURN QUERY SELECT v_first.hold_id, v_first.amount;
        RETURN;
    END IF;
    SELECT * INTO v_empty FROM ledger_empty_applications e
     WHERE e.kind = 'dispute_hold' AND e.reference = p_dispute_id;
    IF FOUND THEN
        PERFORM ledger_require_same_account(p_dispute_id, v_empty.user_id, p_user_id);
        RETURN QUERY SELECT NULL::uuid, 0::numeric(20, 6);
        RETURN;
    END IF;
    v_amount := least(p_credits, greatest(v_user.balance - v_user.credits_held, 0));
    IF v_amount = 0 THEN
        INSERT INTO ledger_empty_applications (kind, reference, user_id, requested, balance_after)
        VALUES ('dispute_hold', p_dispute_id, p_user_id, p_credits, v_user.balance);
        RETURN QUERY SELECT NULL::uuid, 0::numeric(20, 6);
        RETURN;
    END IF;
    INSERT INTO credit_holds (user_id, request_id, amount, description, expires_at)
    VALUES (p_user_id, 'dispute:' || p_dispute_id, v_amount, 'held while dispute ' || p_dispute_id || ' is open',
            'infinity')
    RETURNING credit_holds.hold_id INTO v_hold;
    UPDATE user_credits SET credits_held = credits_held + v_amount, updated_at = now() WHERE user_id = p_user_id;
    RETURN QUERY SELECT v_hold, v_amount;
END $$;


--
-- Name: ledger_actor(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_actor() RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    v_text text := current_setting('ledger.actor', true);
BEGIN
    IF v_text IS NULL OR v_text = '' THEN
        RETURN jsonb_build_object('type', 'database', 'label', session_user);
    END IF;
    RETURN v_text::jsonb;
END $$;


--
-- Name: FUNCTION ledger_actor(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ledger_actor() IS 'Who acts in this transaction (ledger.actor, set by the service); the database role when nobody said.';


--
-- Name: alert_rules; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_rules (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    workspace_id uuid NOT NULL,
    name text NOT NULL,
    description text,
    condition_type text NOT NULL,
    threshold numeric(20,6) NOT NULL,
    window_seconds integer DEFAULT 300 NOT NULL,
    min_requests integer DEFAULT 5 NOT NULL,
    condition_config jsonb DEFAULT '{}'::jsonb NOT NULL,
    severity text DEFAULT 'warning'::text NOT NULL,
    cooldown_secs integer DEFAULT 900 NOT NULL,
    channel_ids uuid[] DEFAULT '{}'::uuid[] NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    last_triggered_at timestamp with time zone,
    triggered_count integer DEFAULT 0 NOT NULL,
    last_value numeric,
    last_evaluated_at timestamp with time zone,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT alert_rules_condition_type_check CHECK ((condition_type = ANY (ARRAY['budget_threshold'::text, 'rate_limit_proximity'::text, 'error_rate'::text, 'spend_rate'::text, 'latency_threshold'::text, 'provider_down'::text]))),
    CONSTRAINT alert_rules_cooldown_secs_check CHECK (((cooldown_secs >= 0) AND (cooldown_secs <= 604800))),
    CONSTRAINT alert_rules_description_check CHECK ((length(description) <= 1000)),
    CONSTRAINT alert_rules_min_requests_check CHECK (((min_requests >= 1) AND (min_requests <= 1000000))),
    CONSTRAINT alert_rules_name_check CHECK ((((length(btrim(name)) >= 1) AND (length(btrim(name)) <= 100)) AND (name !~ '[[:cntrl:]]'::text))),
    CONSTRAINT alert_rules_severity_check CHECK ((severity = ANY (ARRAY['critical'::text, 'error'::text, 'warning'::text, 'info'::text]))),
    CONSTRAINT alert_rules_threshold_check CHECK ((threshold >= (0)::numeric)),
    CONSTRAINT alert_rules_window_seconds_check CHECK (((window_seconds >= 60) AND (window_seconds <= 2592000)))
);


--
-- Name: ledger_alert_breaks(public.alert_rules, numeric); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_alert_breaks(p_rule public.alert_rules, p_value numeric) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT p_value IS NOT NULL AND CASE WHEN p_rule.condition_type = 'rate_limit_proximity'
                                        THEN p_value <= p_rule.threshold ELSE p_value >= p_rule.threshold END
$$;


--
-- Name: ledger_alert_notification_done(bigint, boolean, text, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_alert_notification_done(p_id bigint, p_success boolean, p_error text, p_next_at timestamp with time zone) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_note alert_notifications;
BEGIN
    SELECT * INTO v_note FROM alert_notifications WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR v_note.status <> 'pending' THEN
        RETURN;
    END IF;
    IF p_success THEN
        UPDATE alert_notifications SET status = 'sent', sent_at = now(), verification_code_encrypted = NULL,
                                       last_error = NULL
         WHERE id = p_id;
        UPDATE notification_channels SET last_sent_at = now(), failure_count = 0 WHERE id = v_note.channel_id;
        UPDATE alert_events SET notifications_sent = notifications_sent + 1 WHERE id = v_note.alert_event_id;
        RETURN;
    END IF;
    UPDATE alert_notifications
       SET status = CASE WHEN p_next_at IS NULL THEN 'failed' ELSE 'pending' END,
           next_attempt_at = coalesce(p_next_at, next_attempt_at), last_error = left(p_error, 1000),
           verification_code_encrypted = CASE WHEN p_next_at IS NULL THEN NULL ELSE verification_code_encrypted END
     WHERE id = p_id;
    UPDATE notification_channels
       SET failure_count = failure_count + 1, last_failure_at = now(), last_failure_reason = left(p_error, 500)
     WHERE id = v_note.channel_id;
    IF p_next_at IS NULL THEN
        UPDATE alert_events SET notifications_failed = notifications_failed + 1 WHERE id = v_note.alert_event_id;
    END IF;
END $$;


--
-- Name: ledger_alert_value(public.alert_rules); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_alert_value(p_rule public.alert_rules) RETURNS numeric
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    v_since    timestamptz := now() - make_interval(secs => p_rule.window_seconds);
    v_total    bigint;
    v_value    numeric;
    v_provider text := p_rule.condition_config ->> 'provider';
BEGIN
    IF p_rule.condition_type = 'budget_threshold' THEN
        SELECT max(CASE WHEN b.amount > 0 THEN round((b.spent + b.held) * 100 / b.amount, 2) END) INTO v_value
          FROM budgets_now b
         WHERE b.workspace_id = p_rule.workspace_id
           AND (p_rule.condition_config ->> 'budget_id' IS NULL OR b.id::text = p_rule.condition_config ->> 'budget_id');
        RETURN v_value;
    END IF;
    SELECT count(*),
           CASE p_rule.condition_type
               WHEN 'error_rate' THEN round(100.0 * count(*) FILTER (WHERE NOT l.success AND l.refused_by IS NULL)
                                            / nullif(count(*), 0), 2)
               WHEN 'spend_rate' THEN coalesce(sum(l.credits_used), 0)
               WHEN 'latency_threshold' THEN percentile_cont(0.95) WITHIN GROUP (ORDER BY l.latency_ms)
                                             FILTER (WHERE l.success)
               WHEN 'rate_limit_proximity' THEN min(l.rate_limit_remaining)
               WHEN 'provider_down' THEN round(100.0 * count(*) FILTER (WHERE NOT l.success AND l.status_code >= 500)
                                               / nullif(count(*), 0), 2)
           END
      INTO v_total, v_value
      FROM llm_usage_log l
     WHERE l.user_id = p_rule.workspace_id AND l.created_at >= v_since
       -- a request every provider of its route failed has no provider of its own: it counts for each
       AND (v_provider IS NULL OR l.provider = v_provider
            OR (p_rule.condition_type = 'provider_down' AND l.provider IS NULL AND l.status_code >= 500))
       AND (p_rule.condition_type <> 'provider_down' OR l.refused_by IS NULL);
    IF p_rule.condition_type <> 'spend_rate' AND v_total < p_rule.min_requests THEN
        RETURN NULL;
    END IF;
    RETURN v_value;
END $$;


--
-- Name: ledger_audit(uuid, uuid, text, text, text, jsonb, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_audit(p_workspace_id uuid, p_person_id uuid, p_action text, p_resource_type text, p_resource_id text, p_before jsonb, p_after jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_actor jsonb := ledger_actor();
    v_id    bigint;
BEGIN
    INSERT INTO audit_logs (workspace_id, person_id, actor_type, actor_id, actor_label, action, resource_type,
                            resource_id, before, after, ip, user_agent, request_id)
    VALUES (p_workspace_id, coalesce(p_person_id, (v_actor ->> 'person')::uuid), v_actor ->> 'type',
            v_actor ->> 'id', left(v_actor ->> 'label', 200), p_action, p_resource_type, p_resource_id,
            p_before, p_after, (v_actor ->> 'ip')::inet, left(v_actor ->> 'user_agent', 300),
            left(v_actor ->> 'request_id', 100))
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;


--
-- Name: FUNCTION ledger_audit(p_workspace_id uuid, p_person_id uuid, p_action text, p_resource_type text, p_resource_id text, p_before jsonb, p_after jsonb); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ledger_audit(p_workspace_id uuid, p_person_id uuid, p_action text, p_resource_type text, p_resource_id text, p_before jsonb, p_after jsonb) IS 'Appends one audit row in the calling transaction, naming the actor set in ledger.actor.';


--
-- Name: ledger_audit_change(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_audit_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_secret    text[] := ARRAY['key_hash', 'token_hash', 'password_hash', 'mfa_secret_encrypted',
                                'encrypted_key', 'code_hash', 'mfa_last_step', 'secret_encrypted',
                                'previous_secret_encrypted', 'config_encrypted',
                                'verification_code_encrypted'];
    v_before    jsonb;
    v_after     jsonb;
    v_row       jsonb;
    v_action    text;
    v_workspace uuid;
    v_person    uuid;
BEGIN
    IF TG_OP <> 'INSERT' THEN v_before := to_jsonb(OLD) - v_secret; END IF;
    IF TG_OP <> 'DELETE' THEN v_after := to_jsonb(NEW) - v_secret; END IF;
    IF TG_OP = 'UPDATE' THEN
        IF v_before = v_after AND to_jsonb(OLD) = to_jsonb(NEW) THEN
            RETURN NULL;  -- nothing changed
        END IF;
        IF v_before = v_after THEN
            v_action := 'secret_changed';  -- only a secret column changed (a password, a re-encrypted key)
        ELSIF v_after ? 'revoked_at' AND v_before ->> 'revoked_at' IS NULL AND v_after ->> 'revoked_at' IS NOT NULL THEN
            v_action := CASE TG_TABLE_NAME WHEN 'sessions' THEN 'ended' ELSE 'revoked' END;
        ELSIF v_after ? 'archived_at' AND v_before ->> 'archived_at' IS NULL AND v_after ->> 'archived_at' IS NOT NULL THEN
            v_action := 'archived';
        ELSIF v_after ? 'accepted_at' AND v_before ->> 'accepted_at' IS NULL AND v_after ->> 'accepted_at' IS NOT NULL THEN
            v_action := 'accepted';
        ELSIF v_after ? 'disabled_at' AND v_before ->> 'disabled_at' IS NULL AND v_after ->> 'disabled_at' IS NOT NULL THEN
            v_action := 'disabled';
        ELSIF v_after ? 'is_active' AND (v_before ->> 'is_active')::boolean AND NOT (v_after ->> 'is_active')::boolean THEN
            v_action := 'deactivated';
        ELSE
            v_action := 'updated';
        END IF;
    ELSE
        v_action := CASE TG_OP WHEN 'INSERT' THEN 'created' ELSE 'deleted' END;
    END IF;
    v_row := coalesce(v_after, v_before);
    IF TG_ARGV[1] <> '-' THEN v_workspace := (v_row ->> TG_ARGV[1])::uuid; END IF;
    IF TG_ARGV[2] <> '-' THEN v_person := (v_row ->> TG_ARGV[2])::uuid; END IF;
    PERFORM ledger_audit(v_workspace, v_person, TG_ARGV[0] || '.' || v_action, TG_ARGV[0],
                         coalesce(v_row ->> 'id', v_row ->> 'user_id', v_row ->> 'code', v_row ->> 'name'),
                         v_before, v_after);
    RETURN NULL;
END $$;


--
-- Name: FUNCTION ledger_audit_change(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ledger_audit_change() IS 'Writes the audit row of a change to an audited table in the same transaction; never copies a secret column.';


--
-- Name: ledger_auto_top_up_failed(bigint, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_auto_top_up_failed(p_id bigint, p_code text, p_message text, p_payment_intent text) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_top_up   auto_top_ups;
    v_failures integer;
BEGIN
    SELECT * INTO v_top_up FROM auto_top_ups WHERE id = p_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM ledger_lock_user(v_top_up.user_id);
    SELECT * INTO v_top_up FROM auto_top_ups WHERE id = p_id FOR UPDATE;
    IF v_top_up.status NOT IN ('pending', 'processing') THEN
        RETURN NULL;
    END IF;
    UPDATE auto_top_ups
       SET status = 'failed', failure_code = left(p_code, 100), failure_message = left(p_message, 500),
           payment_intent_id = coalesce(payment_intent_id, p_payment_intent), updated_at = now()
     WHERE id = p_id;
    UPDATE auto_top_up_settings
       SET consecutive_failures = consecutive_failures + 1,
           next_try_at = now() + CASE WHEN consecutive_failures = 0 THEN interval '1 hour' ELSE interval '6 hours' END,
           enabled = CASE WHEN consecutive_failures + 1 >= 3 THEN false ELSE enabled END,
           disabled_reason = CASE WHEN consecutive_failures + 1 >= 3
                                  THEN format('turned off after 3 failed charges in a row; the last: %s', left(p_message, 200))
                                  ELSE disabled_reason END,
           updated_at = now()
     WHERE user_id = v_top_up.user_id
    RETURNING consecutive_failures INTO v_failures;
    IF v_failures >= 3 THEN
        UPDATE user_credits SET auto_top_up_threshold = NULL WHERE user_id = v_top_up.user_id;
    END IF;
    PERFORM ledger_emit(v_top_up.user_id, 'auto_top_up.failed',
                        jsonb_build_object('auto_top_up_id', p_id, 'code', p_code, 'message', left(p_message, 500),
                                           'credits', v_top_up.credits::text, 'amount_cents', v_top_up.amount_cents,
                                           'failures_in_a_row', v_failures, 'turned_off', v_failures >= 3),
                        'auto_top_up.failed:' || p_id);
    RETURN v_failures;
END $$;


--
-- Name: ledger_auto_top_up_paid(bigint, text, bigint, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_auto_top_up_paid(p_id bigint, p_payment_intent text, p_amount_cents bigint, p_currency text, p_customer text, p_charge text) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_top_up   auto_top_ups;
    v_problems text[] := '{}';
    v_added    record;
BEGIN
    SELECT * INTO v_top_up FROM auto_top_ups WHERE id = p_id;
    IF NOT FOUND THEN
        RETURN 'unknown';
    END IF;
    PERFORM ledger_lock_user(v_top_up.user_id);
    SELECT * INTO v_top_up FROM auto_top_ups WHERE id = p_id FOR UPDATE;
    IF v_top_up.status IN ('succeeded', 'review') THEN
        RETURN 'duplicate';
    END IF;
    IF v_top_up.payment_intent_id IS NOT NULL AND v_top_up.payment_intent_id <> p_payment_intent THEN
        v_problems := v_problems || format('payment intent %s, the top-up was charged as %s', p_payment_intent,
                                           v_top_up.payment_intent_id);
    END IF;
    IF p_amount_cents IS DISTINCT FROM v_top_up.amount_cents THEN
        v_problems := v_problems || format('amount %s, the top-up charges %s', p_amount_cents, v_top_up.amount_cents);
    END IF;
    IF p_currency IS DISTINCT FROM v_top_up.currency THEN
        v_problems := v_problems || format('currency %s, the top-up charges %s', p_currency, v_top_up.currency);
    END IF;
    IF p_customer IS DISTINCT FROM v_top_up.stripe_customer_id THEN
        v_problems := v_problems || format('customer %s is not the wallet''s %s', p_customer, v_top_up.stripe_customer_id);
    END IF;
    INSERT INTO stripe_payments (payment_intent_id, user_id, package_id, credits, amount_cents, currency, charge_id,
                                 status, review_reason)
    VALUES (p_payment_intent, v_top_up.user_id, v_top_up.package_id, v_top_up.credits,
            greatest(coalesce(p_amount_cents, v_top_up.amount_cents), 1), coalesce(p_currency, v_top_up.currency),
            p_charge, CASE WHEN cardinality(v_problems) > 0 THEN 'review' ELSE 'pending' END,
            nullif(array_to_string(v_problems, '; '), ''))
    ON CONFLICT (payment_intent_id) DO NOTHING;
    IF cardinality(v_problems) > 0 THEN
        UPDATE auto_top_ups SET status = 'review', failure_message = array_to_string(v_problems, '; '),
                                payment_intent_id = coalesce(payment_intent_id, p_payment_intent), updated_at = now()
         WHERE id = p_id;
        RETURN 'review';
    END IF;
    SELECT * INTO v_added FROM add_user_credits(v_top_up.user_id, v_top_up.credits, 'purchase', p_payment_intent,
                                                'Auto top-up');
    UPDATE stripe_payments SET status = 'paid', transaction_id = v_added.transaction_id, paid_at = now(),
                               updated_at = now()
     WHERE payment_intent_id = p_payment_intent;
    UPDATE auto_top_ups SET status = 'succeeded', payment_intent_id = p_payment_intent, updated_at = now()
     WHERE id = p_id;
    UPDATE auto_top_up_settings SET consecutive_failures = 0, next_try_at = NULL WHERE user_id = v_top_up.user_id;
    PERFORM ledger_emit(v_top_up.user_id, 'auto_top_up.succeeded',
                        jsonb_build_object('auto_top_up_id', p_id, 'credits', v_top_up.credits::text,
                                           'amount_cents', v_top_up.amount_cents, 'currency', v_top_up.currency,
                                           'payment_intent_id', p_payment_intent,
                                           'balance_after', v_added.new_balance::text),
                        'auto_top_up.succeeded:' || p_id);
    RETURN 'credited';
END $$;


--
-- Name: ledger_balance_low_event(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_balance_low_event() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ledger_emit(NEW.user_id, 'balance.low',
                        jsonb_build_object('spendable', ledger_spendable(NEW)::text,
                                           'balance', NEW.balance::text,
                                           'threshold', NEW.low_balance_threshold::text));
    RETURN NULL;
END $$;


--
-- Name: ledger_budget_alert_events(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_budget_alert_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_budget budgets;
    v_data   jsonb;
BEGIN
    SELECT * INTO v_budget FROM budgets WHERE id = NEW.budget_id;
    v_data := jsonb_build_object(
        'budget_id', NEW.budget_id, 'threshold', NEW.threshold, 'amount', NEW.amount::text,
        'spent', NEW.spent::text, 'period', v_budget.period, 'period_start', NEW.period_start,
        'scope', jsonb_build_object('type', v_budget.scope_type, 'id', v_budget.scope_id),
        'model', v_budget.model_pattern, 'hard', v_budget.hard);
    PERFORM ledger_emit(NEW.workspace_id, 'budget.threshold', v_data,
                        'budget.threshold:' || NEW.budget_id || ':' || extract(epoch FROM NEW.period_start)::bigint
                        || ':' || NEW.threshold);
    IF NEW.threshold >= 100 AND NEW.spent >= NEW.amount THEN
        PERFORM ledger_emit(NEW.workspace_id, 'budget.exceeded', v_data,
                            'budget.exceeded:' || NEW.budget_id || ':' || extract(epoch FROM NEW.period_start)::bigint);
    END IF;
    RETURN NULL;
END $$;


--
-- Name: ledger_budget_alert_rules(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_budget_alert_rules() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_rule alert_rules;
BEGIN
    FOR v_rule IN SELECT * FROM alert_rules r
                   WHERE r.workspace_id = NEW.workspace_id AND r.is_active AND r.condition_type = 'budget_threshold'
                     AND (r.condition_config ->> 'budget_id' IS NULL
                          OR r.condition_config ->> 'budget_id' = NEW.budget_id::text) LOOP
        PERFORM ledger_open_alert(v_rule, NEW.threshold);
    END LOOP;
    RETURN NULL;
END $$;


--
-- Name: ledger_budget_starts(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_budget_starts() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.period_start := ledger_period_start(NEW.period, now(), now());
    RETURN NEW;
END $$;


--
-- Name: ledger_check_control_scope(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_check_control_scope() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_ok boolean;
BEGIN
    v_ok := CASE NEW.scope_type
        WHEN 'workspace' THEN NEW.scope_id = NEW.workspace_id::text
        WHEN 'project' THEN EXISTS (SELECT 1 FROM projects p
                                     WHERE p.id::text = NEW.scope_id AND p.workspace_id = NEW.workspace_id)
        WHEN 'member' THEN EXISTS (SELECT 1 FROM workspace_members m
                                    WHERE m.user_id::text = NEW.scope_id AND m.workspace_id = NEW.workspace_id)
        WHEN 'key' THEN EXISTS (SELECT 1 FROM gateway_api_keys k
                                 WHERE k.id::text = NEW.scope_id AND k.user_id = NEW.workspace_id)
        ELSE true END;
    IF NOT v_ok THEN
        RAISE EXCEPTION 'the % % is not in workspace %', replace(NEW.scope_type, '_', ' '), NEW.scope_id, NEW.workspace_id
            USING ERRCODE = 'LG032',
                  HINT = 'A budget or rate limit applies to the workspace itself, one of its projects, members or keys, or an end user.';
    END IF;
    RETURN NEW;
END $$;


--
-- Name: gateway_api_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.gateway_api_keys (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    key_hash text NOT NULL,
    prefix text NOT NULL,
    name text,
    is_active boolean DEFAULT true NOT NULL,
    expires_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_used_at timestamp with time zone,
    revoked_at timestamp with time zone,
    project_id uuid NOT NULL,
    created_by uuid,
    allowed_models text[],
    allowed_providers text[],
    allowed_ips cidr[]
);


--
-- Name: rate_limit_presets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.rate_limit_presets (
    name text NOT NULL,
    strategy text DEFAULT 'sliding_window'::text NOT NULL,
    requests integer,
    window_seconds integer,
    tokens_per_minute bigint,
    max_concurrent integer,
    description text,
    CONSTRAINT rate_limit_presets_check CHECK (((requests IS NULL) = (window_seconds IS NULL))),
    CONSTRAINT rate_limit_presets_check1 CHECK ((COALESCE((requests)::bigint, tokens_per_minute, (max_concurrent)::bigint) IS NOT NULL)),
    CONSTRAINT rate_limit_presets_max_concurrent_check CHECK (((max_concurrent >= 1) AND (max_concurrent <= 100000))),
    CONSTRAINT rate_limit_presets_name_check CHECK ((name ~ '^[a-z0-9][a-z0-9_-]{0,39}$'::text)),
    CONSTRAINT rate_limit_presets_requests_check CHECK (((requests >= 1) AND (requests <= 10000))),
    CONSTRAINT rate_limit_presets_strategy_check CHECK ((strategy = ANY (ARRAY['sliding_window'::text, 'fixed_window'::text, 'token_bucket'::text, 'leaky_bucket'::text]))),
    CONSTRAINT rate_limit_presets_tokens_per_minute_check CHECK (((tokens_per_minute >= 1) AND (tokens_per_minute <= 1000000000))),
    CONSTRAINT rate_limit_presets_window_seconds_check CHECK (((window_seconds >= 1) AND (window_seconds <= 86400)))
);


--
-- Name: rate_limits; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.rate_limits (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    workspace_id uuid NOT NULL,
    scope_type text NOT NULL,
    scope_id text NOT NULL,
    model_pattern text,
    preset text,
    strategy text DEFAULT 'sliding_window'::text NOT NULL,
    requests integer,
    window_seconds integer,
    tokens_per_minute bigint,
    max_concurrent integer,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    window_start timestamp with time zone,
    window_count integer DEFAULT 0 NOT NULL,
    stamps timestamp with time zone[] DEFAULT '{}'::timestamp with time zone[] NOT NULL,
    level numeric DEFAULT 0 NOT NULL,
    level_at timestamp with time zone,
    tokens_level numeric DEFAULT 0 NOT NULL,
    tokens_at timestamp with time zone,
    in_flight integer DEFAULT 0 NOT NULL,
    CONSTRAINT rate_limits_check CHECK (((requests IS NULL) = (window_seconds IS NULL))),
    CONSTRAINT rate_limits_check1 CHECK (((preset IS NOT NULL) OR (COALESCE((requests)::bigint, tokens_per_minute, (max_concurrent)::bigint) IS NOT NULL))),
    CONSTRAINT rate_limits_in_flight_check CHECK ((in_flight >= 0)),
    CONSTRAINT rate_limits_max_concurrent_check CHECK (((max_concurrent >= 1) AND (max_concurrent <= 100000))),
    CONSTRAINT rate_limits_model_pattern_check CHECK (((length(model_pattern) >= 1) AND (length(model_pattern) <= 200))),
    CONSTRAINT rate_limits_requests_check CHECK (((requests >= 1) AND (requests <= 10000))),
    CONSTRAINT rate_limits_scope_id_check CHECK (((length(scope_id) >= 1) AND (length(scope_id) <= 256))),
    CONSTRAINT rate_limits_scope_type_check CHECK ((scope_type = ANY (ARRAY['workspace'::text, 'project'::text, 'member'::text, 'key'::text, 'end_user'::text]))),
    CONSTRAINT rate_limits_strategy_check CHECK ((strategy = ANY (ARRAY['sliding_window'::text, 'fixed_window'::text, 'token_bucket'::text, 'leaky_bucket'::text]))),
    CONSTRAINT rate_limits_tokens_per_minute_check CHECK (((tokens_per_minute >= 1) AND (tokens_per_minute <= 1000000000))),
    CONSTRAINT rate_limits_window_seconds_check CHECK (((window_seconds >= 1) AND (window_seconds <= 86400)))
);


--
-- Name: rate_limits_effective; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.rate_limits_effective AS
 SELECT r.id,
    r.workspace_id,
    r.scope_type,
    r.scope_id,
    r.model_pattern,
    r.preset,
        CASE
            WHEN (r.preset IS NULL) THEN r.strategy
            ELSE p.strategy
        END AS strategy,
        CASE
            WHEN (r.preset IS NULL) THEN r.requests
            ELSE p.requests
        END AS requests,
        CASE
            WHEN (r.preset IS NULL) THEN r.window_seconds
            ELSE p.window_seconds
        END AS window_seconds,
        CASE
            WHEN (r.preset IS NULL) THEN r.tokens_per_minute
            ELSE p.tokens_per_minute
        END AS tokens_per_minute,
        CASE
            WHEN (r.preset IS NULL) THEN r.max_concurrent
            ELSE p.max_concurrent
        END AS max_concurrent,
    r.window_start,
    r.window_count,
    r.stamps,
    r.level,
    r.level_at,
    r.tokens_level,
    r.tokens_at,
    r.in_flight,
    r.created_by,
    r.created_at,
    r.updated_at
   FROM (public.rate_limits r
     LEFT JOIN public.rate_limit_presets p ON ((p.name = r.preset)));


--
-- Name: ledger_check_controls(public.gateway_api_keys, numeric, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_check_controls(p_key public.gateway_api_keys, p_amount numeric, p_facts jsonb, OUT answer jsonb, OUT budget_ids uuid[], OUT limits public.rate_limits_effective[], OUT slot_ids uuid[], OUT token_ids uuid[]) RETURNS record
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_now       timestamptz := now();
    v_budget    budgets;
    v_limit     record;
    v_tokens    numeric := greatest(coalesce((p_facts ->> 'tokens')::numeric, 0), 0);
    v_soft      jsonb := '[]';
    v_requests  jsonb;
    v_tokens_hd jsonb;
    v_reset     timestamptz;
    v_level     numeric;
    v_cap       numeric;
    v_rate      numeric;  -- units drained per second
    v_start     timestamptz;
    v_stamps    timestamptz[];
    v_retry     numeric;
    v_remaining numeric;
    v_scope     text;
    v_row       rate_limits_effective;
BEGIN
    -- budgets on the request's path (no row lock: the wallet's, held, guards their counters)
    FOR v_budget IN
        SELECT * FROM budgets b
         WHERE b.workspace_id = p_key.user_id
           AND ledger_control_applies(b.scope_type, b.scope_id, b.model_pattern, p_key, p_facts)
         ORDER BY b.id
    LOOP
        IF v_budget.period <> 'lifetime' AND ledger_period_start(v_budget.period, v_now, v_budget.period_start) > v_budget.period_start THEN
            v_budget := ledger_roll_budget(v_budget);
        END IF;
        IF p_amount > 0 AND v_budget.spent + v_budget.held + p_amount > v_budget.amount THEN
            IF v_budget.hard THEN
                v_reset := ledger_period_end(v_budget.period, v_budget.period_start);
                v_scope := ledger_scope_name(v_budget.scope_type, v_budget.scope_id);
                answer := jsonb_build_object('refusal', jsonb_build_object(
                    'kind', 'budget', 'control_id', v_budget.id, 'scope', v_scope,
                    'period', v_budget.period, 'resets_at', v_reset,
                    'remaining', greatest(v_budget.amount - v_budget.spent - v_budget.held, 0),
                    'message', format('Budget exceeded: the %s budget of %s credits on %s%s has %s credits left%s,'
                                      ' and this request can cost up to %s. %s',
                                      v_budget.period, v_budget.amount, v_scope,
                                      CASE WHEN v_budget.model_pattern IS NULL THEN ''
                                           ELSE format(' (models %s)', v_budget.model_pattern) END,
                                      greatest(v_budget.amount - v_budget.spent - v_budget.held, 0),
                                      CASE WHEN v_budget.held > 0 THEN format(' (%s held by requests in flight)', v_budget.held)
                                           ELSE '' END,
                                      p_amount,
                                      CASE WHEN v_reset IS NULL THEN 'It is a lifetime budget: it does not reset.'
                                           ELSE format('It resets at %s.',
                                                       to_char(v_reset AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) END)));
                RETURN;
            END IF;
            v_soft := v_soft || to_jsonb(v_budget.id);
        END IF;
        IF p_amount > 0 THEN
            budget_ids := budget_ids || v_budget.id;
        END IF;
    END LOOP;

    -- rate limits on the request's path
    FOR v_row IN SELECT * FROM ledger_limits_on_path(p_key, p_facts) LOOP
        v_limit := v_row;
        limits := limits || v_row;
        v_scope := ledger_scope_name(v_limit.scope_type, v_limit.scope_id);
        IF v_limit.requests IS NOT NULL THEN
            v_retry := NULL;
            IF v_limit.strategy = 'fixed_window' THEN
                v_start := to_timestamp(floor(extract(epoch FROM v_now) / v_limit.window_seconds) * v_limit.window_seconds);
                v_level := CASE WHEN v_limit.window_start = v_start THEN v_limit.window_count ELSE 0 END;
                v_reset := v_start + make_interval(secs => v_limit.window_seconds);
                IF v_level + 1 > v_limit.requests THEN
                    v_retry := extract(epoch FROM v_reset - v_now);
                END IF;
                v_remaining := v_limit.requests - v_level - 1;
            ELSIF v_limit.strategy = 'sliding_window' THEN
                SELECT coalesce(array_agg(s ORDER BY s), '{}') INTO v_stamps
                  FROM unnest(v_limit.stamps) s WHERE s > v_now - make_interval(secs => v_limit.window_seconds);
                IF cardinality(v_stamps) + 1 > v_limit.requests THEN
                    -- the oldest admission leaving the window frees the next place
                    v_retry := extract(epoch FROM v_stamps[cardinality(v_stamps) - v_limit.requests + 1]
                                              + make_interval(secs => v_limit.window_seconds) - v_now);
                    v_reset := v_stamps[cardinality(v_stamps)] + make_interval(secs => v_limit.window_seconds);
                ELSE
                    v_reset := v_now + make_interval(secs => v_limit.window_seconds);
                END IF;
                v_remaining := v_limit.requests - cardinality(v_stamps) - 1;
            ELSE  -- token_bucket, leaky_bucket: a level draining at requests / window_seconds a second
                v_rate := v_limit.requests::numeric / v_limit.window_seconds;
                v_cap := CASE WHEN v_limit.strategy = 'token_bucket' THEN v_limit.requests ELSE 1 END;
                v_level := greatest(v_limit.level - coalesce(extract(epoch FROM v_now - v_limit.level_at), 0) * v_rate, 0);
                IF v_level + 1 > v_cap THEN
                    v_retry := (v_level + 1 - v_cap) / v_rate;
                    v_reset := v_now + make_interval(secs => v_level / v_rate);
                ELSE
                    v_reset := v_now + make_interval(secs => (v_level + 1) / v_rate);
                END IF;
                v_remaining := floor(v_cap - v_level - 1);
            END IF;
            IF v_retry IS NOT NULL THEN
                answer := jsonb_build_object('refusal', jsonb_build_object(
                    'kind', 'rate_limit', 'control_id', v_limit.id, 'type', 'requests', 'scope', v_scope,
                    'retry_after', greatest(v_retry, 0.001), 'remaining', 0,
                    'message', format('Rate limit reached for %s: %s requests per %s seconds (%s). Try again in %ss.',
                                      v_scope, v_limit.requests, v_limit.window_seconds,
                                      replace(v_limit.strategy, '_', ' '), round(greatest(v_retry, 0.001), 3))),
                    'requests', jsonb_build_object('limit', v_limit.requests, 'remaining', 0, 'reset_at', v_reset));
                RETURN;
            END IF;
            IF v_requests IS NULL OR (v_requests ->> 'remaining')::numeric > v_remaining THEN
                v_requests := jsonb_build_object('limit', v_limit.requests, 'remaining', greatest(v_remaining, 0),
                                                 'reset_at', v_reset);
            END IF;
        END IF;
        IF v_limit.max_concurrent IS NOT NULL AND p_amount > 0 THEN
            IF v_limit.in_flight + 1 > v_limit.max_concurrent THEN
                answer := jsonb_build_object('refusal', jsonb_build_object(
                    'kind', 'rate_limit', 'control_id', v_limit.id, 'type', 'concurrency', 'scope', v_scope,
                    'retry_after', 1, 'remaining', 0,
                    'message', format('Too many requests in flight for %s: at most %s at a time. Try again when one ends.',
                                      v_scope, v_limit.max_concurrent)));
                RETURN;
            END IF;
            slot_ids := slot_ids || v_limit.id;
        END IF;
        IF v_limit.tokens_per_minute IS NOT NULL AND v_tokens > 0 THEN
            v_rate := v_limit.tokens_per_minute::numeric / 60;
            v_level := greatest(v_limit.tokens_level
                                - coalesce(extract(epoch FROM v_now - v_limit.tokens_at), 0) * v_rate, 0);
            IF v_tokens > v_limit.tokens_per_minute THEN
                answer := jsonb_build_object('refusal', jsonb_build_object(
                    'kind', 'rate_limit', 'control_id', v_limit.id, 'type', 'tokens', 'retry_after', NULL,
                    'scope', v_scope, 'remaining', 0,
                    'message', format('This request can use up to %s tokens, more than the limit of %s tokens per minute'
                                      ' on %s. Lower max_tokens or shorten the prompt.', v_tokens,
                                      v_limit.tokens_per_minute, v_scope)));
                RETURN;
            END IF;
            IF v_level + v_tokens > v_limit.tokens_per_minute THEN
                v_retry := (v_level + v_tokens - v_limit.tokens_per_minute) / v_rate;
                answer := jsonb_build_object('refusal', jsonb_build_object(
                    'kind', 'rate_limit', 'control_id', v_limit.id, 'type', 'tokens', 'scope', v_scope,
                    'retry_after', greatest(v_retry, 0.001), 'remaining', 0,
                    'message', format('Rate limit reached for %s: %s tokens per minute, and this request can use up to %s.'
                                      ' Try again in %ss.', v_scope, v_limit.tokens_per_minute, v_tokens,
                                      round(greatest(v_retry, 0.001), 3))),
                    'tokens', jsonb_build_object('limit', v_limit.tokens_per_minute,
                                                 'remaining', floor(greatest(v_limit.tokens_per_minute - v_level, 0)),
                                                 'reset_at', v_now + make_interval(secs => v_level / v_rate)));
                RETURN;
            END IF;
            v_remaining := floor(v_limit.tokens_per_minute - v_level - v_tokens);
            IF v_tokens_hd IS NULL OR (v_tokens_hd ->> 'remaining')::numeric > v_remaining THEN
                v_tokens_hd := jsonb_build_object('limit', v_limit.tokens_per_minute, 'remaining', v_remaining,
                                                  'reset_at', v_now + make_interval(secs => (v_level + v_tokens) / v_rate));
            END IF;
            IF p_amount > 0 THEN
                token_ids := token_ids || v_limit.id;
            END IF;
        END IF;
    END LOOP;

    answer := jsonb_build_object('refusal', NULL, 'requests', v_requests, 'tokens', v_tokens_hd, 'soft', v_soft);
END $$;


--
-- Name: ledger_control_applies(text, text, text, public.gateway_api_keys, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_control_applies(p_scope_type text, p_scope_id text, p_model_pattern text, p_key public.gateway_api_keys, p_facts jsonb) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT (CASE p_scope_type
                WHEN 'workspace' THEN true
                WHEN 'project' THEN p_scope_id = p_key.project_id::text
                WHEN 'member' THEN p_scope_id = p_key.created_by::text
                WHEN 'key' THEN p_scope_id = p_key.id::text
                WHEN 'end_user' THEN p_scope_id = p_facts ->> 'end_user'
                ELSE false END)
       AND (p_model_pattern IS NULL OR ledger_model_matches(p_facts ->> 'model', p_model_pattern))
$$;


--
-- Name: ledger_credit_events(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_credit_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ledger_emit(NEW.user_id,
                        CASE NEW.transaction_type WHEN 'purchase' THEN 'credits.purchased' ELSE 'credits.refunded' END,
                        jsonb_build_object('transaction_id', NEW.id, 'amount', NEW.amount::text,
                                           'balance_after', NEW.balance_after::text,
                                           'payment_intent_id', NEW.payment_intent_id,
                                           'reference_id', NEW.reference_id, 'created_at', NEW.created_at),
                        'credits:' || NEW.id);
    RETURN NULL;
END $$;


--
-- Name: ledger_cycle_end(timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_cycle_end(p_anchor timestamp with time zone, p_at timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE STRICT
    AS $$
    SELECT ledger_cycle_shift(p_anchor, ledger_cycle_index(p_anchor, p_at) + 1)
$$;


--
-- Name: ledger_cycle_index(timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_cycle_index(p_anchor timestamp with time zone, p_at timestamp with time zone) RETURNS integer
    LANGUAGE plpgsql IMMUTABLE STRICT
    AS $$
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


--
-- Name: ledger_cycle_shift(timestamp with time zone, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_cycle_shift(p_anchor timestamp with time zone, p_months integer) RETURNS timestamp with time zone
    LANGUAGE plpgsql IMMUTABLE STRICT
    AS $$
BEGIN
    IF NOT isfinite(p_anchor) THEN
        RAISE EXCEPTION 'a billing cycle anchor must be a finite time, got %', p_anchor USING ERRCODE = 'LG012';
    END IF;
    RETURN ((p_anchor AT TIME ZONE 'UTC') + make_interval(months => p_months)) AT TIME ZONE 'UTC';
END $$;


--
-- Name: ledger_cycle_start(timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_cycle_start(p_anchor timestamp with time zone, p_at timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE STRICT
    AS $$
    SELECT ledger_cycle_shift(p_anchor, ledger_cycle_index(p_anchor, p_at))
$$;


--
-- Name: ledger_draw_grants(uuid, numeric); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_draw_grants(p_user_id uuid, p_amount numeric) RETURNS numeric
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_left numeric := p_amount;
    v_lot  credit_grants;
    v_take numeric;
BEGIN
    FOR v_lot IN SELECT * FROM credit_grants g
                  WHERE g.user_id = p_user_id AND g.remaining > 0
                  ORDER BY g.priority, g.expires_at NULLS LAST, g.id
                  FOR UPDATE LOOP
        EXIT WHEN v_left <= 0;
        v_take := least(v_left, v_lot.remaining);
        UPDATE credit_grants SET remaining = remaining - v_take WHERE id = v_lot.id;
        v_left := v_left - v_take;
    END LOOP;
    RETURN p_amount - v_left;
END $$;


--
-- Name: ledger_emailed_event_types(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_emailed_event_types() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT ARRAY['balance.low', 'budget.threshold', 'budget.exceeded', 'webhook.disabled',
                 'auto_top_up.failed', 'credits.expiring']
$$;


--
-- Name: ledger_emit(uuid, text, jsonb, text, uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_emit(p_workspace uuid, p_type text, p_data jsonb, p_dedup text DEFAULT NULL::text, p_only_webhook uuid DEFAULT NULL::uuid) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_event    uuid;
    v_project  uuid := (p_data ->> 'project_id')::uuid;
    v_hooks    uuid[];
    v_emailed  boolean := p_type = ANY (ledger_emailed_event_types()) AND p_only_webhook IS NULL;
BEGIN
    IF NOT p_type = ANY (ledger_event_types()) THEN
        RAISE EXCEPTION 'unknown event type %', p_type USING ERRCODE = 'LG033';
    END IF;
    SELECT array_agg(w.id) INTO v_hooks
    FROM webhooks w
    WHERE w.workspace_id = p_workspace AND w.is_active AND w.disabled_at IS NULL
      AND (p_only_webhook IS NULL OR w.id = p_only_webhook)
      AND (p_type = ANY (w.events) OR ('*' = ANY (w.events) AND p_type <> 'request.completed')
           OR p_only_webhook IS NOT NULL)
      AND (w.filter_project_ids IS NULL OR v_project = ANY (w.filter_project_ids) OR p_only_webhook IS NOT NULL);
    IF v_hooks IS NULL AND NOT v_emailed THEN
        RETURN NULL;
    END IF;
    INSERT INTO notification_events (workspace_id, event_type, data, dedup_key)
    VALUES (p_workspace, p_type, p_data, p_dedup)
    ON CONFLICT (workspace_id, dedup_key) DO NOTHING
    RETURNING id INTO v_event;
    IF v_event IS NULL THEN
        RETURN NULL;
    END IF;
    IF v_hooks IS NOT NULL THEN
        -- the endpoints' rows are not written here: a settle must never wait on a delivery attempt
        INSERT INTO webhook_messages (event_id, webhook_id, workspace_id)
        SELECT v_event, h, p_workspace FROM unnest(v_hooks) h;
    END IF;
    IF v_emailed THEN
        INSERT INTO notification_emails (event_id, workspace_id, to_email)
        SELECT v_event, p_workspace, e FROM ledger_money_contacts(p_workspace) e
        ON CONFLICT DO NOTHING;
        -- money events go to every verified channel too: "alerts on every channel"
        INSERT INTO alert_notifications (workspace_id, channel_id, event_id, action)
        SELECT p_workspace, c.id, v_event, 'event'
          FROM notification_channels c
         WHERE c.workspace_id = p_workspace AND c.is_verified AND c.is_active;
    END IF;
    RETURN v_event;
END $$;


--
-- Name: FUNCTION ledger_emit(p_workspace uuid, p_type text, p_data jsonb, p_dedup text, p_only_webhook uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ledger_emit(p_workspace uuid, p_type text, p_data jsonb, p_dedup text, p_only_webhook uuid) IS 'Writes an event and its deliveries in the caller''s transaction; NULL when nobody receives it or its dedup key was seen.';


--
-- Name: ledger_event_types(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_event_types() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT ARRAY['request.completed', 'request.failed', 'rate_limit.hit', 'budget.threshold',
                 'budget.exceeded', 'alert.triggered', 'provider.down', 'provider.up', 'balance.low',
                 'credits.purchased', 'credits.refunded', 'credits.expiring', 'auto_top_up.succeeded',
                 'auto_top_up.failed', 'webhook.disabled', 'webhook.test']
$$;


--
-- Name: FUNCTION ledger_event_types(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ledger_event_types() IS 'Every event type. A webhook subscribed to ''*'' gets each of them but request.completed, which is sent only when named.';


--
-- Name: ledger_expire_user_holds(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_expire_user_holds(p_user_id uuid) RETURNS integer
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: credit_transactions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.credit_transactions (
    id bigint NOT NULL,
    user_id uuid NOT NULL,
    transaction_type text NOT NULL,
    amount numeric(20,6) NOT NULL,
    balance_after numeric(20,6) NOT NULL,
    allowance_used numeric(20,6) DEFAULT 0 NOT NULL,
    description text,
    reference_id text,
    payment_intent_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credit_transactions_allowance_used_check CHECK ((allowance_used >= (0)::numeric)),
    CONSTRAINT credit_transactions_balance_after_check CHECK ((balance_after >= (0)::numeric)),
    CONSTRAINT credit_transactions_check CHECK (((amount <> (0)::numeric) OR (allowance_used > (0)::numeric))),
    CONSTRAINT credit_transactions_transaction_type_check CHECK ((transaction_type = ANY (ARRAY['purchase'::text, 'usage'::text, 'refund'::text, 'admin_adjustment'::text, 'bonus'::text, 'expiry'::text])))
);


--
-- Name: ledger_find_replay(uuid, numeric, text, text, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_find_replay(p_user_id uuid, p_amount numeric, p_transaction_type text, p_reference text, p_is_debit boolean) RETURNS public.credit_transactions
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_first     credit_transactions;
    v_requested numeric;
BEGIN
    IF p_reference IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_first FROM credit_transactions
     WHERE transaction_type = p_transaction_type AND reference_id = p_reference;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- a debit recorded only the balance part in amount; what was asked for is that plus the allowance part
    v_requested := CASE WHEN v_first.amount > 0 THEN v_first.amount
                        ELSE v_first.allowance_used - v_first.amount END;
    IF v_first.user_id <> p_user_id OR v_requested <> p_amount OR (v_first.amount <= 0) <> p_is_debit THEN
        RAISE EXCEPTION 'reference % (%) was already applied with a different amount, account or direction',
                        p_reference, p_transaction_type
            USING ERRCODE = 'LG004',
                  DETAIL = format('first: user %s amount %s; now: user %s amount %s',
                                  v_first.user_id, v_requested, p_user_id, p_amount),
                  HINT = 'A retry must repeat the original request exactly; a new operation needs a new reference.';
    END IF;
    RETURN v_first;
END $$;


--
-- Name: ledger_grant_lot(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_grant_lot() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO credit_grants (user_id, transaction_id, kind, amount, remaining)
    VALUES (NEW.user_id, NEW.id, NEW.transaction_type, NEW.amount, NEW.amount);
    PERFORM set_config('ledger.balance_writer', 'on', true);
    UPDATE user_credits SET granted_remaining = granted_remaining + NEW.amount WHERE user_id = NEW.user_id;
    PERFORM set_config('ledger.balance_writer', 'off', true);
    RETURN NULL;
END $$;


--
-- Name: ledger_guard_balance(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_guard_balance() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF coalesce(current_setting('ledger.balance_writer', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    IF (TG_OP = 'INSERT' AND (NEW.balance <> 0 OR NEW.granted_remaining <> 0))
       OR (TG_OP = 'UPDATE' AND (NEW.balance IS DISTINCT FROM OLD.balance
                                 OR NEW.granted_remaining IS DISTINCT FROM OLD.granted_remaining)) THEN
        RAISE EXCEPTION 'balances change only through the ledger functions'
            USING ERRCODE = 'LG007',
                  DETAIL = format('user %s: balance %s -> %s', NEW.user_id,
                                  CASE WHEN TG_OP = 'UPDATE' THEN OLD.balance::text ELSE 'none' END, NEW.balance),
                  HINT = 'Use add_user_credits() or debit_user_credits(); they write the credit_transactions row.';
    END IF;
    RETURN NEW;
END $$;


--
-- Name: ledger_hold_closed(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_hold_closed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_budget    budgets;
    v_was_open  boolean := OLD.status = 'held';
    v_charge    numeric := CASE WHEN NEW.status = 'settled' THEN coalesce(NEW.charged, 0) ELSE 0 END;
    v_threshold integer;
    v_crossed   boolean;
    v_unused    numeric;
BEGIN
    FOR v_budget IN SELECT * FROM budgets b WHERE b.id = ANY (NEW.control_budgets) ORDER BY b.id LOOP
        IF v_budget.period <> 'lifetime'
           AND ledger_period_start(v_budget.period, now(), v_budget.period_start) > v_budget.period_start THEN
            v_budget := ledger_roll_budget(v_budget);
        END IF;
        UPDATE budgets
           SET held = CASE WHEN v_was_open THEN greatest(held - OLD.amount, 0) ELSE held END,
               spent = spent + v_charge
         WHERE id = v_budget.id
        RETURNING * INTO v_budget;
        CONTINUE WHEN v_charge = 0;
        v_crossed := false;
        FOREACH v_threshold IN ARRAY v_budget.alert_thresholds LOOP
            v_crossed := v_crossed OR (NOT v_threshold = ANY (v_budget.alerted)
                                       AND v_budget.spent * 100 >= v_budget.amount * v_threshold);
        END LOOP;
        CONTINUE WHEN NOT v_crossed;
        FOREACH v_threshold IN ARRAY v_budget.alert_thresholds LOOP
            IF NOT v_threshold = ANY (v_budget.alerted) AND v_budget.spent * 100 >= v_budget.amount * v_threshold THEN
                INSERT INTO budget_alerts (budget_id, workspace_id, threshold, period_start, amount, spent)
                VALUES (v_budget.id, v_budget.workspace_id, v_threshold, v_budget.period_start, v_budget.amount,
                        v_budget.spent)
                ON CONFLICT DO NOTHING;
                UPDATE budgets SET alerted = alerted || v_threshold WHERE id = v_budget.id
                RETURNING * INTO v_budget;
            END IF;
        END LOOP;
    END LOOP;
    IF v_was_open AND (NEW.control_slots IS NOT NULL OR NEW.control_tokens IS NOT NULL) THEN
        -- what the request did not use of its token reservation goes back: all of it unless it
        -- settled, and then its bound less the tokens settle_llm_request says it charged
        v_unused := CASE WHEN NEW.status <> 'settled' THEN NEW.reserved_tokens
                         ELSE greatest(NEW.reserved_tokens
                                       - coalesce(nullif(current_setting('ledger.settled_tokens', true), '')::numeric,
                                                  NEW.reserved_tokens), 0) END;
        UPDATE rate_limits
           SET in_flight = CASE WHEN id = ANY (NEW.control_slots) THEN greatest(in_flight - 1, 0) ELSE in_flight END,
               tokens_level = CASE WHEN id = ANY (NEW.control_tokens) THEN greatest(tokens_level - v_unused, 0)
                                   ELSE tokens_level END
         WHERE id = ANY (coalesce(NEW.control_slots, '{}') || coalesce(NEW.control_tokens, '{}'));
    END IF;
    RETURN NULL;
END $$;


--
-- Name: ledger_hold_under_controls(public.gateway_api_keys, numeric, text, interval, text, jsonb, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_hold_under_controls(p_key public.gateway_api_keys, p_amount numeric, p_request_id text, p_ttl interval, p_description text, p_usage jsonb, p_facts jsonb) RETURNS TABLE(hold_state text, hold_id uuid, available numeric, controls jsonb)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_controls jsonb;
    v_checked  record;
    v_reserved record;
    v_tokens   numeric := greatest(coalesce((p_facts ->> 'tokens')::numeric, 0), 0);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM budgets b WHERE b.workspace_id = p_key.user_id)
       AND NOT EXISTS (SELECT 1 FROM rate_limits r WHERE r.workspace_id = p_key.user_id) THEN
        IF p_amount = 0 THEN
            RETURN QUERY SELECT 'none'::text, NULL::uuid, NULL::numeric, NULL::jsonb;
            RETURN;
        END IF;
        SELECT * INTO v_reserved FROM reserve_llm_request(p_key.user_id, p_amount, p_request_id, p_ttl, p_description,
                                                          p_usage);
        RETURN QUERY SELECT CASE WHEN v_reserved.success THEN 'held' ELSE 'refused' END, v_reserved.hold_id,
                            v_reserved.available, NULL::jsonb;
        RETURN;
    END IF;

    -- the wallet's lock first (as every writer), its expired holds given back (and what they
    -- counted), then the controls checked
    PERFORM ledger_lock_user(p_key.user_id);
    PERFORM ledger_expire_user_holds(p_key.user_id);
    SELECT * INTO v_checked FROM ledger_check_controls(p_key, p_amount, p_facts);
    v_controls := v_checked.answer;
    IF v_controls -> 'refusal' <> 'null' THEN
        PERFORM ledger_log_refusal(p_usage, v_controls #>> '{refusal,kind}', v_controls -> 'refusal',
                                   CASE WHEN v_controls #>> '{refusal,kind}' = 'budget' THEN 402 ELSE 429 END);
        RETURN QUERY SELECT v_controls #>> '{refusal,kind}', NULL::uuid, NULL::numeric, v_controls;
        RETURN;
    END IF;
    IF p_amount = 0 THEN
        PERFORM ledger_take_controls(0, v_tokens, NULL, v_checked.limits);
        RETURN QUERY SELECT 'none'::text, NULL::uuid, NULL::numeric, v_controls;
        RETURN;
    END IF;
    SELECT * INTO v_reserved FROM reserve_credits(p_key.user_id, p_amount, p_request_id, p_ttl, p_description);
    IF NOT v_reserved.success THEN
        RETURN QUERY SELECT 'refused'::text, NULL::uuid, v_reserved.available, v_controls;
        RETURN;
    END IF;
    -- the usage row it leaves if never settled and what it counts, in one write of the new hold
    UPDATE credit_holds h
       SET usage_template = p_usage, control_budgets = v_checked.budget_ids, control_slots = v_checked.slot_ids,
           control_tokens = v_checked.token_ids, reserved_tokens = CASE WHEN v_checked.token_ids IS NOT NULL
                                                                        THEN v_tokens END
     WHERE h.hold_id = v_reserved.hold_id AND h.usage_template IS NULL;
    IF FOUND THEN
        PERFORM ledger_take_controls(p_amount, v_tokens, v_checked.budget_ids, v_checked.limits);
    END IF;
    RETURN QUERY SELECT 'held'::text, v_reserved.hold_id, v_reserved.available, v_controls;
END $$;


--
-- Name: ledger_keep_an_owner(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_keep_an_owner() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF OLD.role <> 'OWNER' OR (TG_OP = 'UPDATE' AND NEW.role = 'OWNER') THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM workspaces WHERE id = OLD.workspace_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;  -- the workspace itself is being deleted
    END IF;
    IF NOT EXISTS (SELECT 1 FROM workspace_members
                    WHERE workspace_id = OLD.workspace_id AND role = 'OWNER') THEN
        RAISE EXCEPTION 'the last owner of a workspace cannot leave it or stop being its owner'
            USING ERRCODE = 'LG030',
                  HINT = 'Make another member an owner first.';
    END IF;
    RETURN NULL;
END $$;


--
-- Name: FUNCTION ledger_keep_an_owner(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ledger_keep_an_owner() IS 'Guarantees a workspace with an owner keeps at least one: refuses removing or demoting the last (LG030).';


--
-- Name: ledger_keep_cycle_anchor(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_keep_cycle_anchor() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.billing_cycle_anchor IS NULL
       OR ledger_cycle_start(NEW.billing_cycle_anchor, NEW.billing_cycle_start) <> NEW.billing_cycle_start THEN
        NEW.billing_cycle_anchor := NEW.billing_cycle_start;
    END IF;
    -- validates a start written by hand: LG012 when it is not a finite time
    PERFORM ledger_cycle_index(NEW.billing_cycle_anchor, NEW.billing_cycle_start);
    RETURN NEW;
END $$;


--
-- Name: ledger_key_project(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_key_project() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.project_id IS NULL THEN
        SELECT id INTO NEW.project_id FROM projects WHERE workspace_id = NEW.user_id AND is_default;
    ELSIF NOT EXISTS (SELECT 1 FROM projects
                       WHERE id = NEW.project_id AND workspace_id = NEW.user_id AND archived_at IS NULL) THEN
        RAISE EXCEPTION 'project % is not an active project of this workspace', NEW.project_id
            USING ERRCODE = 'LG031', HINT = 'List the workspace''s projects and pick one that is not archived.';
    END IF;
    RETURN NEW;
END $$;


--
-- Name: FUNCTION ledger_key_project(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ledger_key_project() IS 'Guarantees every gateway key is in a live project of its own workspace (the default one when none is named).';


--
-- Name: ledger_key_refusal(public.gateway_api_keys, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_key_refusal(p_key public.gateway_api_keys, p_facts jsonb) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    v_model text := p_facts ->> 'model';
    v_ip    inet;
BEGIN
    IF p_key.allowed_models IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM unnest(p_key.allowed_models) m WHERE ledger_model_matches(v_model, m)) THEN
        RETURN jsonb_build_object('what', 'model', 'message',
            format('This API key may not use the model ''%s'' (allowed: %s). A workspace member can ask an owner or admin for access.',
                   left(v_model, 200), array_to_string(p_key.allowed_models, ', ')));
    END IF;
    IF p_key.allowed_providers IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(p_facts -> 'providers') p
                        WHERE p.value = ANY (p_key.allowed_providers)) THEN
        RETURN jsonb_build_object('what', 'provider', 'message',
            format('This API key may only use the providers %s, and none of them serves ''%s''.',
                   array_to_string(p_key.allowed_providers, ', '), left(v_model, 200)));
    END IF;
    IF p_key.allowed_ips IS NOT NULL THEN
        BEGIN
            v_ip := (p_facts ->> 'client_ip')::inet;
        EXCEPTION WHEN others THEN
            v_ip := NULL;
        END;
        IF v_ip IS NULL OR NOT EXISTS (SELECT 1 FROM unnest(p_key.allowed_ips) c WHERE v_ip <<= c) THEN
            RETURN jsonb_build_object('what', 'ip', 'message',
                format('This API key may not be used from %s.', coalesce(host(v_ip), 'an unknown address')));
        END IF;
    END IF;
    RETURN NULL;
END $$;


--
-- Name: ledger_limits_on_path(public.gateway_api_keys, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_limits_on_path(p_key public.gateway_api_keys, p_facts jsonb) RETURNS SETOF public.rate_limits_effective
    LANGUAGE sql
    AS $$
    SELECT r.id, r.workspace_id, r.scope_type, r.scope_id, r.model_pattern, r.preset,
           CASE WHEN r.preset IS NULL THEN r.strategy ELSE p.strategy END,
           CASE WHEN r.preset IS NULL THEN r.requests ELSE p.requests END,
           CASE WHEN r.preset IS NULL THEN r.window_seconds ELSE p.window_seconds END,
           CASE WHEN r.preset IS NULL THEN r.tokens_per_minute ELSE p.tokens_per_minute END,
           CASE WHEN r.preset IS NULL THEN r.max_concurrent ELSE p.max_concurrent END,
           r.window_start, r.window_count, r.stamps, r.level, r.level_at, r.tokens_level, r.tokens_at, r.in_flight,
           r.created_by, r.created_at, r.updated_at
      FROM rate_limits r LEFT JOIN rate_limit_presets p ON p.name = r.preset
     WHERE r.workspace_id = p_key.user_id
       AND ledger_control_applies(r.scope_type, r.scope_id, r.model_pattern, p_key, p_facts)
     ORDER BY r.id
$$;


--
-- Name: ledger_lock_user(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_lock_user(p_user_id uuid) RETURNS public.user_credits
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: ledger_log_refusal(jsonb, text, jsonb, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_log_refusal(p_usage jsonb, p_refused_by text, p_refusal jsonb, p_status integer) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ledger_log_usage(
        p_usage || jsonb_build_object('success', false, 'status_code', p_status,
                                      'error_message', left(p_refusal ->> 'message', 1000),
                                      'refused_by', p_refused_by,
                                      'control_id', p_refusal -> 'control_id',
                                      'rate_limited', p_refused_by = 'rate_limit',
                                      'rate_limit_remaining', CASE WHEN p_refused_by = 'rate_limit' THEN 0 END),
        NULL, 0, NULL, false);
END $$;


--
-- Name: ledger_log_usage(jsonb, uuid, numeric, bigint, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_log_usage(p_usage jsonb, p_hold_id uuid, p_credits numeric, p_transaction_id bigint, p_success boolean) RETURNS void
    LANGUAGE plpgsql
    AS $$
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
         status_code, error_message, is_byok, hold_id, transaction_id, usage_anomaly, reported_usage,
         api, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, input_audio_tokens,
         cache_audio_read_tokens, input_image_tokens, cache_image_read_tokens, reasoning_tokens,
         output_audio_tokens, output_image_tokens, end_user, refused_by, control_id, rate_limited,
         rate_limit_remaining)
    VALUES
        (v_row.request_id, v_row.user_id, v_row.gateway_key_id, v_row.provider, v_row.model, v_row.power_level,
         coalesce(v_row.prompt_tokens, 0), coalesce(v_row.completion_tokens, 0),
         coalesce(v_row.prompt_tokens, 0) + coalesce(v_row.completion_tokens, 0),
         coalesce(v_row.cost_usd, 0), v_row.cost_multiplier, p_credits, v_row.latency_ms, p_success,
         v_row.status_code, v_row.error_message, coalesce(v_row.is_byok, false), p_hold_id, p_transaction_id,
         v_row.usage_anomaly, left(v_row.reported_usage, 2000),
         v_row.api, coalesce(v_row.cache_read_tokens, 0), coalesce(v_row.cache_write_tokens, 0),
         coalesce(v_row.cache_write_1h_tokens, 0), coalesce(v_row.input_audio_tokens, 0),
         coalesce(v_row.cache_audio_read_tokens, 0), coalesce(v_row.input_image_tokens, 0),
         coalesce(v_row.cache_image_read_tokens, 0), coalesce(v_row.reasoning_tokens, 0),
         coalesce(v_row.output_audio_tokens, 0), coalesce(v_row.output_image_tokens, 0),
         v_row.end_user, v_row.refused_by, v_row.control_id, coalesce(v_row.rate_limited, false),
         v_row.rate_limit_remaining)
    ON CONFLICT (request_id) DO NOTHING;
END $$;


--
-- Name: ledger_metered_calls(boolean, uuid[], numeric[], text[], uuid[], uuid[], text[], text[], text[], text[], boolean[], text[], interval[], text[], text[], text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_metered_calls(p_wait boolean, p_settle_hold_ids uuid[], p_settle_credits numeric[], p_settle_usages text[], p_settle_byok_key_ids uuid[], p_fail_hold_ids uuid[], p_fail_usages text[], p_key_hashes text[], p_power_levels text[], p_holds text[], p_byok boolean[], p_request_ids text[], p_ttls interval[], p_descriptions text[], p_usages text[], p_facts text[]) RETURNS TABLE(ord integer, deferred boolean, success boolean, new_balance numeric, transaction_id bigint, charged numeric, shortfall numeric, available numeric, released numeric, key_id uuid, user_id uuid, power_level text, hold_state text, hold_id uuid, own_keys jsonb, controls jsonb, allowed_providers text[])
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_settles  integer := coalesce(array_length(p_settle_hold_ids, 1), 0);
    v_failures integer := coalesce(array_length(p_fail_hold_ids, 1), 0);
    v_touched  uuid[];
    v_locked   uuid[];
    -- the wallet of each hold, and of each begin's key: what a call must have locked to run
    v_hold_wallets jsonb;
    v_key_wallets  jsonb;
    v_wallet   uuid;
    v_got      uuid[];
    v_byok     uuid[];  -- the BYOK keys of the settles, locked without waiting
    v_defer    boolean;
BEGIN
    -- (each step is skipped when the batch has nothing for it: a lone call pays only its own)
    v_hold_wallets := '{}';
    v_key_wallets := '{}';
    IF p_key_hashes <> '{}' THEN
        -- keys a begin would touch, locked (without waiting, unless p_wait) and touched now: the
        -- begin then finds them fresh; a stale key locked elsewhere makes its begins deferred
        IF p_wait THEN
            v_touched := ARRAY(
                SELECT k.id FROM gateway_api_keys k
                 WHERE k.key_hash = ANY(p_key_hashes) AND k.is_active
                   AND (k.expires_at IS NULL OR k.expires_at > now())
                   AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
                 ORDER BY k.id FOR NO KEY UPDATE);
        ELSE
            v_touched := ARRAY(
                SELECT k.id FROM gateway_api_keys k
                 WHERE k.key_hash = ANY(p_key_hashes) AND k.is_active
                   AND (k.expires_at IS NULL OR k.expires_at > now())
                   AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
                 ORDER BY k.id FOR NO KEY UPDATE SKIP LOCKED);
        END IF;
        IF v_touched <> '{}' THEN
            UPDATE gateway_api_keys g SET last_used_at = now() WHERE g.id = ANY(v_touched);
        END IF;
        -- a key still stale here was locked elsewhere: its begins wait (wallet NULL: never locked)
        SELECT coalesce(jsonb_object_agg(k.key_hash,
                                         CASE WHEN k.last_used_at IS NULL
                                                   OR k.last_used_at < now() - interval '1 minute'
                                              THEN NULL ELSE k.user_id END), '{}')
          INTO v_key_wallets
          FROM gateway_api_keys k
         WHERE k.key_hash = ANY(p_key_hashes) AND k.is_active AND (k.expires_at IS NULL OR k.expires_at > now());
    END IF;
    IF v_settles + v_failures > 0 THEN
        SELECT coalesce(jsonb_object_agg(h.hold_id, h.user_id), '{}') INTO v_hold_wallets
          FROM credit_holds h WHERE h.hold_id = ANY(p_settle_hold_ids || p_fail_hold_ids);
    END IF;
    IF p_wait THEN
        v_locked := ARRAY(
            SELECT u.user_id FROM user_credits u
             WHERE u.user_id IN (SELECT (value #>> '{}')::uuid FROM jsonb_each(v_hold_wallets || v_key_wallets))
             ORDER BY u.user_id FOR UPDATE);
    ELSE
        v_locked := ARRAY(
            SELECT u.user_id FROM user_credits u
             WHERE u.user_id IN (SELECT (value #>> '{}')::uuid FROM jsonb_each(v_hold_wallets || v_key_wallets))
             ORDER BY u.user_id FOR UPDATE SKIP LOCKED);
        -- The rows a call writes besides its wallet's and key's are guarded by the wallet's lock,
        -- but an operator's edit may hold one (a budget, a rate limit, a BYOK key): a wallet with
        -- such a row locked elsewhere has its calls deferred too, so the batch never waits.
        IF v_locked <> '{}' THEN
            v_got := ARRAY(SELECT b.id FROM budgets b WHERE b.workspace_id = ANY(v_locked)
                            FOR NO KEY UPDATE SKIP LOCKED);
            v_locked := ARRAY(SELECT unnest(v_locked) EXCEPT
                              SELECT b.workspace_id FROM budgets b
                               WHERE b.workspace_id = ANY(v_locked) AND NOT b.id = ANY(v_got));
            v_got := ARRAY(SELECT r.id FROM rate_limits r WHERE r.workspace_id = ANY(v_locked)
                            FOR NO KEY UPDATE SKIP LOCKED);
            v_locked := ARRAY(SELECT unnest(v_locked) EXCEPT
                              SELECT r.workspace_id FROM rate_limits r
                               WHERE r.workspace_id = ANY(v_locked) AND NOT r.id = ANY(v_got));
        END IF;
        IF v_settles > 0 THEN
            v_byok := ARRAY(SELECT p.id FROM user_provider_keys p WHERE p.id = ANY(p_settle_byok_key_ids)
                             FOR NO KEY UPDATE SKIP LOCKED);
        END IF;
    END IF;

    FOR i IN 1 .. v_settles LOOP
        v_wallet := (v_hold_wallets ->> p_settle_hold_ids[i]::text)::uuid;
        IF NOT p_wait AND p_settle_byok_key_ids[i] IS NOT NULL
           AND NOT coalesce(p_settle_byok_key_ids[i] = ANY(v_byok), false) THEN
            -- its BYOK key is locked elsewhere (a request on its own keys may hold nothing, so
            -- the wallet it waits with is the key's)
            v_wallet := coalesce(v_wallet, (SELECT p.user_id FROM user_provider_keys p
                                             WHERE p.id = p_settle_byok_key_ids[i]));
            v_defer := true;
        ELSE
            v_defer := v_wallet IS NOT NULL AND NOT v_wallet = ANY(v_locked);
        END IF;
        IF v_defer THEN
            RETURN QUERY SELECT i, true, NULL::boolean, NULL::numeric, NULL::bigint, NULL::numeric, NULL::numeric,
                                NULL::numeric, NULL::numeric, NULL::uuid, v_wallet, NULL::text, NULL::text,
                                NULL::uuid, NULL::jsonb, NULL::jsonb, NULL::text[];
            CONTINUE;
        END IF;
        RETURN QUERY
            SELECT i, false, s.success, s.new_balance, s.transaction_id, s.charged, s.shortfall, s.available,
                   NULL::numeric, NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::uuid, NULL::jsonb,
                   NULL::jsonb, NULL::text[]
              FROM settle_llm_request(p_settle_hold_ids[i], p_settle_credits[i], p_settle_usages[i]::jsonb,
                                      p_settle_byok_key_ids[i]) s;
    END LOOP;
    FOR i IN 1 .. v_failures LOOP
        v_wallet := (v_hold_wallets ->> p_fail_hold_ids[i]::text)::uuid;
        IF v_wallet IS NOT NULL AND NOT v_wallet = ANY(v_locked) THEN
            RETURN QUERY SELECT v_settles + i, true, NULL::boolean, NULL::numeric, NULL::bigint, NULL::numeric,
                                NULL::numeric, NULL::numeric, NULL::numeric, NULL::uuid, v_wallet, NULL::text,
                                NULL::text, NULL::uuid, NULL::jsonb, NULL::jsonb, NULL::text[];
            CONTINUE;
        END IF;
        RETURN QUERY
            SELECT v_settles + i, false, NULL::boolean, NULL::numeric, NULL::bigint, NULL::numeric, NULL::numeric,
                   NULL::numeric, fail_llm_request(p_fail_hold_ids[i], p_fail_usages[i]::jsonb),
                   NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::uuid, NULL::jsonb, NULL::jsonb, NULL::text[];
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(p_key_hashes, 1), 0) LOOP
        -- a known key whose wallet is not locked here (or which stayed stale) waits; an unknown one
        -- runs (begin_llm_request finds nothing and locks nothing)
        IF v_key_wallets ? p_key_hashes[i]
           AND NOT coalesce((v_key_wallets ->> p_key_hashes[i])::uuid = ANY(v_locked), false) THEN
            RETURN QUERY SELECT v_settles + v_failures + i, true, NULL::boolean, NULL::numeric, NULL::bigint,
                                NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric, NULL::uuid, k.user_id,
                                NULL::text, NULL::text, NULL::uuid, NULL::jsonb, NULL::jsonb, NULL::text[]
                           FROM gateway_api_keys k WHERE k.key_hash = p_key_hashes[i];
            CONTINUE;
        END IF;
        RETURN QUERY
            SELECT v_settles + v_failures + i, false, NULL::boolean, NULL::numeric, NULL::bigint, NULL::numeric,
                   NULL::numeric, b.available, NULL::numeric, b.key_id, b.user_id, b.power_level, b.hold_state,
                   b.hold_id, b.own_keys, b.controls, b.allowed_providers
              FROM begin_llm_request(p_key_hashes[i], p_power_levels[i], p_holds[i]::jsonb, p_byok[i],
                                     p_request_ids[i], p_ttls[i], p_descriptions[i], p_usages[i]::jsonb,
                                     p_facts[i]::jsonb) b;
    END LOOP;
END $$;


--
-- Name: ledger_model_matches(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_model_matches(p_model text, p_pattern text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT p_model LIKE replace(replace(replace(replace(p_pattern, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%')
$$;


--
-- Name: ledger_money_contacts(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_money_contacts(p_workspace uuid) RETURNS SETOF text
    LANGUAGE sql STABLE
    AS $$
    WITH members AS (
        SELECT DISTINCT lower(u.email) AS email
        FROM workspace_members m JOIN users u ON u.id = m.user_id
        WHERE m.workspace_id = p_workspace AND (m.role = 'OWNER' OR m.billing_contact))
    SELECT email FROM members
    UNION ALL
    SELECT lower(c.email) FROM user_credits c
    WHERE c.user_id = p_workspace AND c.email IS NOT NULL AND NOT EXISTS (SELECT 1 FROM members)
$$;


--
-- Name: ledger_open_alert(public.alert_rules, numeric); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_open_alert(p_rule public.alert_rules, p_value numeric) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_event   uuid;
    v_message text;
BEGIN
    IF NOT p_rule.is_active OR NOT ledger_alert_breaks(p_rule, p_value)
       OR (p_rule.last_triggered_at IS NOT NULL
           AND p_rule.last_triggered_at > now() - make_interval(secs => p_rule.cooldown_secs)) THEN
        RETURN NULL;
    END IF;
    v_message := format('%s: %s is %s (threshold %s%s)', p_rule.name, replace(p_rule.condition_type, '_', ' '),
                        round(p_value, 2), p_rule.threshold,
                        CASE WHEN p_rule.condition_type = 'budget_threshold' THEN '' ELSE
                             format(', over the last %s s', p_rule.window_seconds) END);
    INSERT INTO alert_events (workspace_id, rule_id, trigger_value, threshold_value, message, severity)
    VALUES (p_rule.workspace_id, p_rule.id, p_value, p_rule.threshold, v_message, p_rule.severity)
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_event;
    IF v_event IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE alert_rules SET last_triggered_at = now(), triggered_count = triggered_count + 1 WHERE id = p_rule.id;
    PERFORM ledger_queue_alert(p_rule, v_event, 'trigger');
    PERFORM ledger_emit(p_rule.workspace_id, 'alert.triggered',
                        jsonb_build_object('alert_event_id', v_event, 'rule_id', p_rule.id, 'rule', p_rule.name,
                                           'condition_type', p_rule.condition_type, 'value', p_value::text,
                                           'threshold', p_rule.threshold::text, 'severity', p_rule.severity,
                                           'message', v_message));
    IF p_rule.condition_type = 'provider_down' THEN
        PERFORM ledger_emit(p_rule.workspace_id, 'provider.down',
                            jsonb_build_object('provider', p_rule.condition_config ->> 'provider',
                                               'failed_percent', p_value::text, 'alert_event_id', v_event));
    END IF;
    RETURN v_event;
END $$;


--
-- Name: ledger_period_end(text, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_period_end(p_period text, p_start timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT ((p_start AT TIME ZONE 'UTC') + CASE p_period
        WHEN 'daily' THEN interval '1 day'
        WHEN 'weekly' THEN interval '1 week'
        WHEN 'monthly' THEN interval '1 month'
        WHEN 'yearly' THEN interval '1 year' END) AT TIME ZONE 'UTC'
$$;


--
-- Name: ledger_period_start(text, timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_period_start(p_period text, p_at timestamp with time zone, p_since timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE p_period
        WHEN 'daily' THEN date_trunc('day', p_at, 'UTC')
        WHEN 'weekly' THEN date_trunc('week', p_at, 'UTC')     -- ISO weeks: Monday 00:00 UTC
        WHEN 'monthly' THEN date_trunc('month', p_at, 'UTC')
        WHEN 'yearly' THEN date_trunc('year', p_at, 'UTC')
        ELSE p_since END
$$;


--
-- Name: ledger_queue_alert(public.alert_rules, uuid, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_queue_alert(p_rule public.alert_rules, p_event uuid, p_action text) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_count integer;
BEGIN
    INSERT INTO alert_notifications (workspace_id, channel_id, alert_event_id, action)
    SELECT p_rule.workspace_id, c.id, p_event, p_action
      FROM notification_channels c
     WHERE c.id = ANY (p_rule.channel_ids) AND c.workspace_id = p_rule.workspace_id AND c.is_verified AND c.is_active;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END $$;


--
-- Name: ledger_refuse_change(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'LG007',
              HINT = 'Correct a mistake with a new transaction (admin_adjustment), never by editing history.';
END $$;


--
-- Name: ledger_require_amount(numeric, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_require_amount(p_amount numeric, p_allow_zero boolean DEFAULT false) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
    IF p_amount IS NULL OR p_amount = 'NaN'::numeric OR p_amount IN ('Infinity'::numeric, '-Infinity'::numeric) THEN
        RAISE EXCEPTION 'amount must be a finite number, got %', coalesce(p_amount::text, 'NULL')
            USING ERRCODE = 'LG001';
    END IF;
    IF p_amount < 0 OR (p_amount = 0 AND NOT p_allow_zero) THEN
        RAISE EXCEPTION 'amount must be greater than 0, got %', p_amount
            USING ERRCODE = 'LG001',
                  HINT = 'Use add_user_credits() to add and debit_user_credits() to remove; both take positive amounts.';
    END IF;
    IF p_amount <> round(p_amount, 6) THEN
        RAISE EXCEPTION 'amount % has more than 6 decimal places', p_amount
            USING ERRCODE = 'LG001', HINT = 'Round the amount to 6 decimal places before calling.';
    END IF;
    IF p_amount >= 100000000000000 THEN
        RAISE EXCEPTION 'amount % is too large', p_amount
            USING ERRCODE = 'LG001',
                  DETAIL = 'Credit amounts are numeric(20,6): at most 99999999999999.999999.',
                  HINT = 'Check the amount; no balance can hold this many credits.';
    END IF;
END $$;


--
-- Name: FUNCTION ledger_require_amount(p_amount numeric, p_allow_zero boolean); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ledger_require_amount(p_amount numeric, p_allow_zero boolean) IS 'LG001 unless the amount is finite, > 0 (or >= 0), has at most 6 decimals and fits numeric(20,6).';


--
-- Name: ledger_require_power_level(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_require_power_level(p_power_level text) RETURNS void
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    PERFORM 1 FROM power_level_configs WHERE power_level = p_power_level AND is_active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown power level %', coalesce(quote_literal(p_power_level), 'NULL')
            USING ERRCODE = 'LG011',
                  HINT = (SELECT 'Known power levels: ' || string_agg(power_level, ', ' ORDER BY cost_multiplier)
                            FROM power_level_configs WHERE is_active);
    END IF;
END $$;


--
-- Name: ledger_require_same_account(text, uuid, uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_require_same_account(p_reference text, p_first_user uuid, p_user_id uuid) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
    IF p_first_user <> p_user_id THEN
        RAISE EXCEPTION 'reference % was already applied to another account', p_reference
            USING ERRCODE = 'LG004',
                  DETAIL = format('first: user %s; now: user %s', p_first_user, p_user_id),
                  HINT = 'A reference identifies one operation on one account; use a new one.';
    END IF;
END $$;


--
-- Name: ledger_resolve_alert(uuid, uuid, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_resolve_alert(p_event uuid, p_by uuid, p_note text) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_event alert_events;
    v_rule  alert_rules;
BEGIN
    UPDATE alert_events SET resolved_at = now(), resolved_by = p_by,
                            resolution_note = coalesce(p_note, CASE WHEN p_by IS NULL THEN 'the condition cleared' END)
     WHERE id = p_event AND resolved_at IS NULL
    RETURNING * INTO v_event;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT * INTO v_rule FROM alert_rules WHERE id = v_event.rule_id;
    PERFORM ledger_queue_alert(v_rule, p_event, 'resolve');
    IF v_rule.condition_type = 'provider_down' THEN
        PERFORM ledger_emit(v_rule.workspace_id, 'provider.up',
                            jsonb_build_object('provider', v_rule.condition_config ->> 'provider',
                                               'alert_event_id', p_event));
    END IF;
    RETURN true;
END $$;


--
-- Name: budgets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.budgets (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    workspace_id uuid NOT NULL,
    scope_type text NOT NULL,
    scope_id text NOT NULL,
    model_pattern text,
    amount numeric(20,6) NOT NULL,
    period text NOT NULL,
    hard boolean DEFAULT true NOT NULL,
    alert_thresholds integer[] DEFAULT '{50,80,100}'::integer[] NOT NULL,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    period_start timestamp with time zone DEFAULT now() NOT NULL,
    spent numeric(20,6) DEFAULT 0 NOT NULL,
    held numeric(20,6) DEFAULT 0 NOT NULL,
    alerted integer[] DEFAULT '{}'::integer[] NOT NULL,
    CONSTRAINT budgets_alert_thresholds_check CHECK (((cardinality(alert_thresholds) <= 10) AND (0 < ALL (alert_thresholds)) AND (1000 >= ALL (alert_thresholds)))),
    CONSTRAINT budgets_amount_check CHECK ((amount > (0)::numeric)),
    CONSTRAINT budgets_held_check CHECK ((held >= (0)::numeric)),
    CONSTRAINT budgets_model_pattern_check CHECK (((length(model_pattern) >= 1) AND (length(model_pattern) <= 200))),
    CONSTRAINT budgets_period_check CHECK ((period = ANY (ARRAY['daily'::text, 'weekly'::text, 'monthly'::text, 'yearly'::text, 'lifetime'::text]))),
    CONSTRAINT budgets_scope_id_check CHECK (((length(scope_id) >= 1) AND (length(scope_id) <= 256))),
    CONSTRAINT budgets_scope_type_check CHECK ((scope_type = ANY (ARRAY['workspace'::text, 'project'::text, 'member'::text, 'key'::text, 'end_user'::text])))
);


--
-- Name: TABLE budgets; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.budgets IS 'Spend caps on a scope of a workspace; spent + held is checked against amount at every hold (hard: refused beyond it).';


--
-- Name: ledger_roll_budget(public.budgets); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_roll_budget(p_budget public.budgets) RETURNS public.budgets
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_start  timestamptz := ledger_period_start(p_budget.period, now(), p_budget.period_start);
    v_budget budgets := p_budget;
BEGIN
    IF v_start <= p_budget.period_start THEN
        RETURN v_budget;
    END IF;
    INSERT INTO budget_history (budget_id, workspace_id, period, period_start, period_end, amount, spent, hard)
    VALUES (p_budget.id, p_budget.workspace_id, p_budget.period, p_budget.period_start,
            ledger_period_end(p_budget.period, p_budget.period_start), p_budget.amount, p_budget.spent, p_budget.hard)
    ON CONFLICT (budget_id, period_start) DO NOTHING;
    UPDATE budgets SET period_start = v_start, spent = 0, alerted = '{}'
     WHERE id = p_budget.id
    RETURNING * INTO v_budget;
    RETURN v_budget;
END $$;


--
-- Name: ledger_scope_name(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_scope_name(p_scope_type text, p_scope_id text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT replace(p_scope_type, '_', ' ') || ' ' || left(p_scope_id, 80)
$$;


--
-- Name: ledger_spendable(public.user_credits); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_spendable(p_user public.user_credits) RETURNS numeric
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT CASE WHEN p_user.monthly_allowance IS NULL THEN NULL
                ELSE greatest(p_user.monthly_allowance - p_user.credits_used_this_month, 0) + p_user.balance
           END
$$;


--
-- Name: ledger_start_auto_top_up(public.user_credits); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_start_auto_top_up(p_user public.user_credits) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_settings auto_top_up_settings;
    v_package  credit_packages;
    v_month    numeric;
    v_id       bigint;
BEGIN
    SELECT * INTO v_settings FROM auto_top_up_settings WHERE user_id = p_user.user_id;
    IF NOT FOUND OR NOT v_settings.enabled OR ledger_spendable(p_user) IS NULL
       OR ledger_spendable(p_user) >= v_settings.threshold
       OR (v_settings.next_try_at IS NOT NULL AND v_settings.next_try_at > now())
       OR EXISTS (SELECT 1 FROM auto_top_ups t WHERE t.user_id = p_user.user_id
                                               AND t.status IN ('pending', 'processing')) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_package FROM credit_packages WHERE id = v_settings.package_id AND is_active;
    IF NOT FOUND THEN
        PERFORM ledger_emit(p_user.user_id, 'auto_top_up.failed',
                            jsonb_build_object('reason', 'the package chosen for auto top-up is no longer on sale'),
                            'auto_top_up.package:' || v_settings.package_id);
        RETURN NULL;
    END IF;
    SELECT coalesce(sum(t.credits), 0) INTO v_month FROM auto_top_ups t
     WHERE t.user_id = p_user.user_id AND t.status IN ('pending', 'processing', 'succeeded', 'review')
       AND t.created_at >= date_trunc('month', now(), 'UTC');
    IF v_month + v_package.credits > v_settings.monthly_limit THEN
        PERFORM ledger_emit(p_user.user_id, 'auto_top_up.failed',
                            jsonb_build_object('reason', format(
                                'this month''s automatic purchases (%s credits) would pass the monthly limit of %s',
                                v_month, v_settings.monthly_limit), 'monthly_limit', v_settings.monthly_limit::text),
                            'auto_top_up.limit:' || to_char(date_trunc('month', now(), 'UTC'), 'YYYY-MM'));
        RETURN NULL;
    END IF;
    INSERT INTO auto_top_ups (user_id, package_id, credits, amount_cents, currency, payment_method_id,
                              stripe_customer_id, idempotency_key, spendable_at_start)
    VALUES (p_user.user_id, v_package.id, v_package.credits, (v_package.price_usd * 100)::bigint, 'usd',
            v_settings.payment_method_id, v_settings.stripe_customer_id,
            'ledger-auto-top-up-' || p_user.user_id || '-' || nextval('auto_top_ups_id_seq'),
            ledger_spendable(p_user))
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;


--
-- Name: FUNCTION ledger_start_auto_top_up(p_user public.user_credits); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ledger_start_auto_top_up(p_user public.user_credits) IS 'Queues one off-session top-up when due; never a second while one is in flight.';


--
-- Name: ledger_take_controls(numeric, numeric, uuid[], public.rate_limits_effective[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_take_controls(p_amount numeric, p_tokens numeric, p_budget_ids uuid[], p_limits public.rate_limits_effective[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_now   timestamptz := now();
    v_limit rate_limits_effective;
    v_start timestamptz;
BEGIN
    IF p_amount > 0 AND p_budget_ids IS NOT NULL THEN
        UPDATE budgets SET held = held + p_amount WHERE id = ANY (p_budget_ids);
    END IF;
    FOREACH v_limit IN ARRAY coalesce(p_limits, '{}') LOOP
        v_start := CASE WHEN v_limit.strategy = 'fixed_window' AND v_limit.requests IS NOT NULL
                        THEN to_timestamp(floor(extract(epoch FROM v_now) / v_limit.window_seconds)
                                          * v_limit.window_seconds) END;
        UPDATE rate_limits r
           SET window_start = coalesce(v_start, r.window_start),
               window_count = CASE WHEN v_start IS NULL THEN r.window_count
                                   WHEN r.window_start = v_start THEN r.window_count + 1 ELSE 1 END,
               stamps = CASE WHEN v_limit.strategy = 'sliding_window' AND v_limit.requests IS NOT NULL
                             THEN (SELECT coalesce(array_agg(s ORDER BY s), '{}') FROM unnest(r.stamps) s
                                    WHERE s > v_now - make_interval(secs => v_limit.window_seconds)) || v_now
                             ELSE r.stamps END,
               level = CASE WHEN v_limit.strategy IN ('token_bucket', 'leaky_bucket') AND v_limit.requests IS NOT NULL
                            THEN greatest(r.level - coalesce(extract(epoch FROM v_now - r.level_at), 0)
                                                    * v_limit.requests::numeric / v_limit.window_seconds, 0) + 1
                            ELSE r.level END,
               level_at = CASE WHEN v_limit.strategy IN ('token_bucket', 'leaky_bucket') AND v_limit.requests IS NOT NULL
                               THEN v_now ELSE r.level_at END,
               tokens_level = CASE WHEN v_limit.tokens_per_minute IS NOT NULL AND p_tokens > 0
                                   THEN greatest(r.tokens_level - coalesce(extract(epoch FROM v_now - r.tokens_at), 0)
                                                                  * v_limit.tokens_per_minute::numeric / 60, 0) + p_tokens
                                   ELSE r.tokens_level END,
               tokens_at = CASE WHEN v_limit.tokens_per_minute IS NOT NULL AND p_tokens > 0 THEN v_now
                                ELSE r.tokens_at END,
               in_flight = r.in_flight + CASE WHEN v_limit.max_concurrent IS NOT NULL AND p_amount > 0 THEN 1 ELSE 0 END
         WHERE r.id = v_limit.id;
    END LOOP;
END $$;


--
-- Name: ledger_tier_allowance(text, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_tier_allowance(p_tier text, p_inactive_ok boolean DEFAULT false) RETURNS numeric
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    v_allowance numeric;
BEGIN
    SELECT monthly_allowance INTO v_allowance FROM subscription_tiers
     WHERE tier = p_tier AND (is_active OR p_inactive_ok);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown tier %', coalesce(quote_literal(p_tier), 'NULL')
            USING ERRCODE = 'LG010',
                  HINT = (SELECT 'Known tiers: ' || string_agg(tier, ', ' ORDER BY price_usd)
                            FROM subscription_tiers WHERE is_active);
    END IF;
    RETURN v_allowance;
END $$;


--
-- Name: ledger_usage_events(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_usage_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_data   jsonb;
    v_budget budgets;
BEGIN
    v_data := jsonb_build_object(
        'request_id', NEW.request_id, 'model', NEW.model, 'provider', NEW.provider, 'api', NEW.api,
        'project_id', NEW.project_id, 'key_id', NEW.gateway_key_id, 'end_user', NEW.end_user,
        'status_code', NEW.status_code, 'credits_used', NEW.credits_used::text,
        'prompt_tokens', NEW.prompt_tokens, 'completion_tokens', NEW.completion_tokens,
        'latency_ms', NEW.latency_ms, 'created_at', NEW.created_at);
    IF NEW.refused_by = 'rate_limit' THEN
        PERFORM ledger_emit(NEW.user_id, 'rate_limit.hit', v_data || jsonb_build_object('rate_limit_id', NEW.control_id),
                            'rate_limit.hit:' || coalesce(NEW.control_id::text, '-') || ':'
                            || (extract(epoch FROM NEW.created_at)::bigint / 60)::text);
    ELSIF NEW.refused_by = 'budget' THEN
        SELECT * INTO v_budget FROM budgets WHERE id = NEW.control_id;
        PERFORM ledger_emit(NEW.user_id, 'budget.exceeded',
                            v_data || jsonb_build_object('budget_id', NEW.control_id, 'hard', true,
                                                         'amount', v_budget.amount::text,
                                                         'spent', v_budget.spent::text,
                                                         'period', v_budget.period,
                                                         'period_start', v_budget.period_start),
                            'budget.exceeded:' || coalesce(NEW.control_id::text, '-') || ':'
                            || coalesce(extract(epoch FROM v_budget.period_start)::bigint::text, '-'));
    ELSIF NEW.success THEN
        PERFORM ledger_emit(NEW.user_id, 'request.completed', v_data);
    ELSE
        PERFORM ledger_emit(NEW.user_id, 'request.failed',
                            v_data || jsonb_build_object('error', left(NEW.error_message, 500),
                                                         'refused_by', NEW.refused_by));
    END IF;
    RETURN NULL;
END $$;


--
-- Name: ledger_usage_project(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_usage_project() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.project_id IS NULL AND NEW.gateway_key_id IS NOT NULL THEN
        SELECT project_id INTO NEW.project_id FROM gateway_api_keys WHERE id = NEW.gateway_key_id;
    END IF;
    RETURN NEW;
END $$;


--
-- Name: FUNCTION ledger_usage_project(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ledger_usage_project() IS 'Names on each usage row the project its gateway key was in when the request ran.';


--
-- Name: ledger_user_cycle(public.user_credits, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_user_cycle(p_user public.user_credits, p_at timestamp with time zone DEFAULT now()) RETURNS TABLE(cycle_start timestamp with time zone, cycle_end timestamp with time zone, credits_used numeric, allowance_remaining numeric, rolls boolean)
    LANGUAGE plpgsql STABLE
    AS $$
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


--
-- Name: ledger_valid_tiers(jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_valid_tiers(p_tiers jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $_$
    SELECT jsonb_typeof(p_tiers) = 'object' AND NOT EXISTS (
        SELECT 1
          FROM jsonb_each(p_tiers) AS t(token_type, tiers)
         WHERE t.token_type NOT IN ('input', 'output', 'cache_read', 'cache_write', 'cache_write_1h',
                                    'input_audio', 'cache_audio_read', 'input_image', 'cache_image_read',
                                    'reasoning', 'output_audio', 'output_image')
            OR jsonb_typeof(t.tiers) <> 'array'
            OR EXISTS (
                SELECT 1
                  FROM jsonb_array_elements(t.tiers) AS e(tier)
                 WHERE jsonb_typeof(e.tier) <> 'object'
                    OR jsonb_typeof(e.tier -> 'above') <> 'number'
                    OR jsonb_typeof(e.tier -> 'usd_per_mtok') NOT IN ('number', 'string')
                    OR (e.tier ->> 'above') !~ '^[0-9]{1,12}$'
                    OR (e.tier ->> 'usd_per_mtok') !~ '^[0-9]{1,6}(\.[0-9]{1,6})?$'))
$_$;


--
-- Name: ledger_wallet_auto_top_up(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_wallet_auto_top_up() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ledger_start_auto_top_up(NEW);
    RETURN NULL;
END $$;


--
-- Name: ledger_wallet_workspace(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_wallet_workspace() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO workspaces (id, name, kind)
    VALUES (NEW.user_id, left(coalesce(nullif(btrim(regexp_replace(NEW.email, '[[:cntrl:]]', '', 'g')), ''),
                                       'Personal workspace'), 100), 'personal');
    INSERT INTO projects (workspace_id, name, is_default) VALUES (NEW.user_id, 'Default project', true);
    RETURN NULL;
END $$;


--
-- Name: FUNCTION ledger_wallet_workspace(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ledger_wallet_workspace() IS 'Guarantees every user_credits row is a workspace (personal until made a team) with its default project.';


--
-- Name: ledger_webhook_attempt(bigint, integer, jsonb, text, integer, jsonb, text, integer, boolean, text, timestamp with time zone, integer, double precision); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_webhook_attempt(p_message bigint, p_attempt integer, p_headers jsonb, p_body text, p_status integer, p_response_headers jsonb, p_response_body text, p_latency_ms integer, p_success boolean, p_error text, p_next_at timestamp with time zone, p_disable_after integer, p_disable_after_secs double precision) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_message webhook_messages;
    v_hook    webhooks;
    v_event   notification_events;
BEGIN
    -- the endpoint first, then its message: concurrent attempts of one endpoint queue on the
    -- endpoint's row instead of each holding a key-share lock (the log row's foreign key) the
    -- other needs to upgrade; NO KEY UPDATE leaves settles inserting its messages unblocked
    SELECT w.* INTO v_hook FROM webhooks w
     WHERE w.id = (SELECT m.webhook_id FROM webhook_messages m WHERE m.id = p_message)
       FOR NO KEY UPDATE;
    SELECT * INTO v_message FROM webhook_messages WHERE id = p_message FOR UPDATE;
    IF NOT FOUND OR v_hook.id IS NULL THEN
        RETURN 'gone';  -- the endpoint was deleted meanwhile
    END IF;
    SELECT * INTO v_event FROM notification_events WHERE id = v_message.event_id;
    INSERT INTO webhook_deliveries
        (workspace_id, webhook_id, message_id, event_id, event_type, attempt_number, request_headers,
         request_body, response_status, response_headers, response_body, latency_ms, success,
         error_message, next_retry_at)
    VALUES (v_message.workspace_id, v_message.webhook_id, p_message, v_message.event_id, v_event.event_type,
            p_attempt, p_headers, p_body, p_status, p_response_headers, left(p_response_body, 2000),
            p_latency_ms, p_success, left(p_error, 1000), CASE WHEN p_success THEN NULL ELSE p_next_at END);
    UPDATE webhooks SET last_triggered_at = now() WHERE id = v_hook.id;
    IF p_success THEN
        UPDATE webhook_messages SET status = 'delivered', delivered_at = now() WHERE id = p_message;
        UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL WHERE id = v_hook.id;
        RETURN 'delivered';
    END IF;
    IF v_message.status = 'pending' THEN
        UPDATE webhook_messages
        SET status = CASE WHEN p_next_at IS NULL THEN 'failed' ELSE 'pending' END,
            next_attempt_at = coalesce(p_next_at, next_attempt_at)
        WHERE id = p_message;
    END IF;
    UPDATE webhooks
    SET consecutive_failures = consecutive_failures + 1, failing_since = coalesce(failing_since, now()),
        last_failure_at = now(), last_failure_reason = left(p_error, 500)
    WHERE id = v_hook.id
    RETURNING * INTO v_hook;
    IF v_hook.disabled_at IS NULL AND v_hook.consecutive_failures >= p_disable_after
       AND v_hook.failing_since <= now() - make_interval(secs => p_disable_after_secs) THEN
        UPDATE webhooks
        SET disabled_at = now(),
            disabled_reason = format('%s deliveries in a row failed since %s; the last: %s',
                                     v_hook.consecutive_failures,
                                     to_char(v_hook.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
                                     left(p_error, 300))
        WHERE id = v_hook.id
        RETURNING * INTO v_hook;
        PERFORM ledger_emit(v_hook.workspace_id, 'webhook.disabled',
                            jsonb_build_object('webhook_id', v_hook.id, 'name', v_hook.name, 'url', v_hook.url,
                                               'consecutive_failures', v_hook.consecutive_failures,
                                               'reason', v_hook.disabled_reason));
        RETURN 'disabled';
    END IF;
    RETURN CASE WHEN p_next_at IS NULL THEN 'failed' ELSE 'retrying' END;
END $$;


--
-- Name: FUNCTION ledger_webhook_attempt(p_message bigint, p_attempt integer, p_headers jsonb, p_body text, p_status integer, p_response_headers jsonb, p_response_body text, p_latency_ms integer, p_success boolean, p_error text, p_next_at timestamp with time zone, p_disable_after integer, p_disable_after_secs double precision); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ledger_webhook_attempt(p_message bigint, p_attempt integer, p_headers jsonb, p_body text, p_status integer, p_response_headers jsonb, p_response_body text, p_latency_ms integer, p_success boolean, p_error text, p_next_at timestamp with time zone, p_disable_after integer, p_disable_after_secs double precision) IS 'Logs one delivery attempt and moves its message and endpoint on, atomically; disables an endpoint that keeps failing.';


--
-- Name: ledger_write_debit(public.user_credits, numeric, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_write_debit(p_user public.user_credits, p_amount numeric, p_transaction_type text, p_reference text, p_description text) RETURNS TABLE(success boolean, new_balance numeric, transaction_id bigint)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_from_allowance numeric := 0;
    v_from_grants    numeric := 0;
    v_balance        numeric;
    v_txn_id         bigint;
BEGIN
    IF p_transaction_type = 'usage' THEN
        v_from_allowance := CASE WHEN p_user.monthly_allowance IS NULL THEN p_amount
                                 ELSE least(p_amount, greatest(p_user.monthly_allowance - p_user.credits_used_this_month, 0))
                            END;
    END IF;
    -- p_user is the row the caller read under the wallet's lock: its granted_remaining is current
    IF p_transaction_type <> 'refund' AND p_amount > v_from_allowance AND p_user.granted_remaining > 0 THEN
        v_from_grants := ledger_draw_grants(p_user.user_id, p_amount - v_from_allowance);
    END IF;

    PERFORM set_config('ledger.balance_writer', 'on', true);
    UPDATE user_credits
       SET balance = balance - (p_amount - v_from_allowance),
           granted_remaining = granted_remaining - v_from_grants,
           credits_used_this_month = credits_used_this_month
                                     + CASE WHEN p_transaction_type = 'usage' THEN p_amount ELSE 0 END,
           updated_at = now()
     WHERE user_id = p_user.user_id
    RETURNING balance INTO v_balance;
    PERFORM set_config('ledger.balance_writer', 'off', true);

    INSERT INTO credit_transactions
        (user_id, transaction_type, amount, balance_after, allowance_used, description, reference_id)
    VALUES (p_user.user_id, p_transaction_type, -(p_amount - v_from_allowance), v_balance,
            v_from_allowance, p_description, p_reference)
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_txn_id;
    IF v_txn_id IS NULL THEN
        RAISE EXCEPTION 'reference % (%) is already used by another transaction', p_reference, p_transaction_type
            USING ERRCODE = 'LG004', HINT = 'A reference identifies one operation on one account; use a new one.';
    END IF;

    RETURN QUERY SELECT true, v_balance, v_txn_id;
END $$;


--
-- Name: refund_purchased_credits(uuid, numeric, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.refund_purchased_credits(p_user_id uuid, p_credits numeric, p_reference text, p_description text DEFAULT NULL::text) RETURNS TABLE(success boolean, new_balance numeric, transaction_id bigint, refunded numeric, shortfall numeric)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_user  user_credits;
    v_first credit_transactions;
    v_empty ledger_empty_applications;
    v_take  numeric;
    v_debit record;
BEGIN
    PERFORM ledger_require_amount(p_credits);
    IF nullif(btrim(p_reference), '') IS NULL THEN
        RAISE EXCEPTION 'a refund needs its reference' USING ERRCODE = 'LG008';
    END IF;
    v_user := ledger_lock_user(p_user_id);
    SELECT * INTO v_first FROM credit_transactions t
     WHERE t.transaction_type = 'refund' AND t.reference_id = p_reference;
    IF FOUND THEN
        PERFORM ledger_require_same_account(p_reference, v_first.user_id, p_user_id);
        RETURN QUERY SELECT true, v_first.balance_after, v_first.id, -v_first.amount, p_credits + v_first.amount;
        RETURN;
    END IF;
    SELECT * INTO v_empty FROM ledger_empty_applications e WHERE e.kind = 'refund' AND e.reference = p_reference;
    IF FOUND THEN
        PERFORM ledger_require_same_account(p_reference, v_empty.user_id, p_user_id);
        RETURN QUERY SELECT true, v_empty.balance_after, NULL::bigint, 0::numeric(20, 6), p_credits;
        RETURN;
    END IF;
    v_take := least(p_credits, v_user.balance - v_user.granted_remaining);
    IF v_take = 0 THEN
        INSERT INTO ledger_empty_applications (kind, reference, user_id, requested, balance_after)
        VALUES ('refund', p_reference, p_user_id, p_credits, v_user.balance);
        RETURN QUERY SELECT true, v_user.balance, NULL::bigint, 0::numeric(20, 6), p_credits;
        RETURN;
    END IF;
    SELECT * INTO v_debit FROM ledger_write_debit(v_user, v_take, 'refund', p_reference, p_description);
    RETURN QUERY SELECT true, v_debit.new_balance, v_debit.transaction_id, v_take, p_credits - v_take;
END $$;


--
-- Name: release_credit_hold(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.release_credit_hold(p_hold_id uuid) RETURNS TABLE(success boolean, released numeric)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_hold    credit_holds;
    v_user_id uuid;
BEGIN
    SELECT h.user_id INTO v_user_id FROM credit_holds h WHERE h.hold_id = p_hold_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown hold %', coalesce(p_hold_id::text, 'NULL') USING ERRCODE = 'LG005';
    END IF;
    PERFORM ledger_lock_user(v_user_id);
    SELECT * INTO v_hold FROM credit_holds h WHERE h.hold_id = p_hold_id FOR UPDATE;

    IF v_hold.status = 'settled' THEN
        RAISE EXCEPTION 'hold % was already settled; it cannot be released', p_hold_id USING ERRCODE = 'LG006';
    END IF;
    IF v_hold.status <> 'held' THEN
        RETURN QUERY SELECT true, 0::numeric;
        RETURN;
    END IF;

    UPDATE credit_holds SET status = 'released', resolved_at = now() WHERE credit_holds.hold_id = p_hold_id;
    UPDATE user_credits SET credits_held = credits_held - v_hold.amount, updated_at = now()
     WHERE user_id = v_user_id;
    RETURN QUERY SELECT true, v_hold.amount;
END $$;


--
-- Name: reserve_controlled_request(uuid, numeric, text, interval, text, jsonb, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.reserve_controlled_request(p_key_id uuid, p_amount numeric, p_request_id text, p_ttl interval, p_description text, p_usage jsonb, p_facts jsonb) RETURNS TABLE(hold_state text, hold_id uuid, available numeric, controls jsonb)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_key gateway_api_keys;
BEGIN
    SELECT * INTO v_key FROM gateway_api_keys k WHERE k.id = p_key_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown gateway key %', p_key_id USING ERRCODE = 'LG003';
    END IF;
    RETURN QUERY SELECT * FROM ledger_hold_under_controls(v_key, p_amount, p_request_id, p_ttl, p_description,
                                                          p_usage, p_facts);
END $$;


--
-- Name: reserve_credits(uuid, numeric, text, interval, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.reserve_credits(p_user_id uuid, p_amount numeric, p_request_id text, p_ttl interval DEFAULT '00:15:00'::interval, p_description text DEFAULT NULL::text) RETURNS TABLE(success boolean, hold_id uuid, available numeric)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_user      user_credits;
    v_hold      credit_holds;
    v_available numeric;
BEGIN
    PERFORM ledger_require_amount(p_amount);
    IF nullif(btrim(p_request_id), '') IS NULL THEN
        RAISE EXCEPTION 'a hold needs its request id' USING ERRCODE = 'LG008';
    END IF;
    IF p_ttl IS NULL OR p_ttl <= interval '0' THEN
        RAISE EXCEPTION 'hold time-to-live must be positive, got %', coalesce(p_ttl::text, 'NULL')
            USING ERRCODE = 'LG009';
    END IF;

    v_user := ledger_lock_user(p_user_id);
    IF ledger_expire_user_holds(p_user_id) > 0 THEN
        SELECT * INTO v_user FROM user_credits WHERE user_id = p_user_id;
    END IF;
    v_available := ledger_spendable(v_user) - v_user.credits_held;

    SELECT * INTO v_hold FROM credit_holds h WHERE h.request_id = p_request_id;
    IF FOUND THEN
        IF v_hold.user_id <> p_user_id OR v_hold.amount <> p_amount THEN
            RAISE EXCEPTION 'request % already holds credits with a different amount or account', p_request_id
                USING ERRCODE = 'LG004',
                      DETAIL = format('first: user %s amount %s', v_hold.user_id, v_hold.amount);
        END IF;
        RETURN QUERY SELECT true, v_hold.hold_id, v_available;
        RETURN;
    END IF;

    IF v_available IS NOT NULL AND p_amount > v_available THEN
        RETURN QUERY SELECT false, NULL::uuid, v_available;
        RETURN;
    END IF;

    INSERT INTO credit_holds (user_id, request_id, amount, description, expires_at)
    VALUES (p_user_id, p_request_id, p_amount, p_description, now() + p_ttl)
    RETURNING * INTO v_hold;
    UPDATE user_credits SET credits_held = credits_held + p_amount, updated_at = now()
     WHERE user_id = p_user_id;

    RETURN QUERY SELECT true, v_hold.hold_id, v_available - p_amount;
END $$;


--
-- Name: reserve_llm_request(uuid, numeric, text, interval, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.reserve_llm_request(p_user_id uuid, p_amount numeric, p_request_id text, p_ttl interval, p_description text, p_usage jsonb) RETURNS TABLE(success boolean, hold_id uuid, available numeric)
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: retry_auto_top_ups(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.retry_auto_top_ups() RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_user  uuid;
    v_count integer := 0;
BEGIN
    FOR v_user IN SELECT s.user_id FROM auto_top_up_settings s
                   WHERE s.enabled AND s.next_try_at IS NOT NULL AND s.next_try_at <= now()
                   ORDER BY s.user_id LIMIT 1000 LOOP
        IF ledger_start_auto_top_up(ledger_lock_user(v_user)) IS NOT NULL THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END $$;


--
-- Name: roll_billing_cycles(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.roll_billing_cycles(p_max_users integer DEFAULT 1000) RETURNS integer
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: roll_budget_periods(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.roll_budget_periods() RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_budget budgets;
    v_count  integer := 0;
BEGIN
    FOR v_budget IN
        SELECT b.* FROM budgets b JOIN user_credits u ON u.user_id = b.workspace_id
         WHERE b.period <> 'lifetime' AND ledger_period_start(b.period, now(), b.period_start) > b.period_start
         ORDER BY b.id FOR UPDATE OF u SKIP LOCKED
    LOOP
        SELECT * INTO v_budget FROM budgets WHERE id = v_budget.id;  -- as it is now the wallet is ours
        IF ledger_period_start(v_budget.period, now(), v_budget.period_start) > v_budget.period_start THEN
            PERFORM ledger_roll_budget(v_budget);
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END $$;


--
-- Name: set_user_power_level(uuid, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.set_user_power_level(p_user_id uuid, p_power_level text) RETURNS public.user_credits
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: set_user_tier(uuid, text, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.set_user_tier(p_user_id uuid, p_tier text, p_cycle_start timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS public.user_credits
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: settle_credit_hold(uuid, numeric, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.settle_credit_hold(p_hold_id uuid, p_amount numeric, p_description text DEFAULT NULL::text) RETURNS TABLE(success boolean, new_balance numeric, transaction_id bigint, charged numeric, shortfall numeric)
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: settle_llm_request(uuid, numeric, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.settle_llm_request(p_hold_id uuid, p_credits numeric, p_usage jsonb) RETURNS TABLE(success boolean, new_balance numeric, transaction_id bigint, charged numeric, shortfall numeric, available numeric)
    LANGUAGE plpgsql
    AS $$
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
    IF v_settled.shortfall > 0 THEN
        v_usage := v_usage || jsonb_build_object(
            'usage_anomaly', concat_ws('; ', nullif(v_usage ->> 'usage_anomaly', ''),
                                       format('charged %s of its cost %s: the account could no longer cover %s'
                                              ' (credits taken back, or its hold expired, while it ran)',
                                              v_settled.charged, v_credits, v_settled.shortfall)));
    END IF;
    DELETE FROM llm_usage_log l
     WHERE l.hold_id = p_hold_id AND l.usage_anomaly = 'hold_expired_unsettled' AND l.transaction_id IS NULL;
    PERFORM ledger_log_usage(v_usage, p_hold_id, v_settled.charged, v_settled.transaction_id,
                             coalesce((v_usage ->> 'success')::boolean, true));
    RETURN QUERY SELECT v_settled.success, v_settled.new_balance, v_settled.transaction_id,
                        v_settled.charged, v_settled.shortfall, ledger_spendable(u) - u.credits_held
                   FROM user_credits u WHERE u.user_id = v_user_id;
END $$;


--
-- Name: settle_llm_request(uuid, numeric, jsonb, uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.settle_llm_request(p_hold_id uuid, p_credits numeric, p_usage jsonb, p_byok_key_id uuid) RETURNS TABLE(success boolean, new_balance numeric, transaction_id bigint, charged numeric, shortfall numeric, available numeric)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_first boolean := p_byok_key_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM llm_usage_log l WHERE l.request_id = p_usage ->> 'request_id');
BEGIN
    PERFORM set_config('ledger.settled_tokens',
                       (coalesce((p_usage ->> 'prompt_tokens')::numeric, 0)
                        + coalesce((p_usage ->> 'completion_tokens')::numeric, 0))::text, true);
    RETURN QUERY SELECT * FROM settle_llm_request(p_hold_id, p_credits, p_usage);
    PERFORM set_config('ledger.settled_tokens', '', true);
    IF v_first THEN
        UPDATE user_provider_keys SET last_used_at = now(), usage_count_this_month = usage_count_this_month + 1
         WHERE id = p_byok_key_id;
    END IF;
END $$;


--
-- Name: tell_expiring_grants(interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.tell_expiring_grants(p_within interval) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_lot   credit_grants;
    v_count integer := 0;
BEGIN
    FOR v_lot IN SELECT * FROM credit_grants g
                  WHERE g.remaining > 0 AND g.expiring_told_at IS NULL AND g.expires_at <= now() + p_within
                    AND g.expires_at > now()
                  ORDER BY g.expires_at
                  LIMIT 1000
                  FOR UPDATE SKIP LOCKED LOOP
        PERFORM ledger_emit(v_lot.user_id, 'credits.expiring',
                            jsonb_build_object('grant_id', v_lot.id, 'remaining', v_lot.remaining::text,
                                               'amount', v_lot.amount::text, 'kind', v_lot.kind,
                                               'expires_at', v_lot.expires_at),
                            'credits.expiring:' || v_lot.id);
        UPDATE credit_grants SET expiring_told_at = now() WHERE id = v_lot.id;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END $$;


--
-- Name: admin_api_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.admin_api_keys (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    workspace_id uuid NOT NULL,
    key_hash text NOT NULL,
    prefix text NOT NULL,
    name text,
    created_by text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_used_at timestamp with time zone,
    revoked_at timestamp with time zone,
    CONSTRAINT admin_api_keys_key_hash_check CHECK ((length(key_hash) = 64)),
    CONSTRAINT admin_api_keys_name_check CHECK (((name IS NULL) OR ((length(name) <= 100) AND (name !~ '[[:cntrl:]]'::text))))
);


--
-- Name: TABLE admin_api_keys; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.admin_api_keys IS 'Keys of the administration API (sk-lg-admin-...): SHA-256 hashed, shown once; they cannot make metered calls.';


--
-- Name: alert_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_events (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    workspace_id uuid NOT NULL,
    rule_id uuid NOT NULL,
    trigger_value numeric,
    threshold_value numeric,
    message text NOT NULL,
    severity text NOT NULL,
    notifications_sent integer DEFAULT 0 NOT NULL,
    notifications_failed integer DEFAULT 0 NOT NULL,
    triggered_at timestamp with time zone DEFAULT now() NOT NULL,
    acknowledged_at timestamp with time zone,
    acknowledged_by uuid,
    resolved_at timestamp with time zone,
    resolved_by uuid,
    resolution_note text
);


--
-- Name: alert_notifications; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_notifications (
    id bigint NOT NULL,
    workspace_id uuid NOT NULL,
    channel_id uuid NOT NULL,
    alert_event_id uuid,
    event_id uuid,
    action text NOT NULL,
    verification_code_encrypted bytea,
    status text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    sent_at timestamp with time zone,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT alert_notifications_action_check CHECK ((action = ANY (ARRAY['trigger'::text, 'resolve'::text, 'verify'::text, 'event'::text]))),
    CONSTRAINT alert_notifications_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'sent'::text, 'failed'::text])))
);


--
-- Name: alert_notifications_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.alert_notifications_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: alert_notifications_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.alert_notifications_id_seq OWNED BY public.alert_notifications.id;


--
-- Name: audit_logs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_logs (
    id bigint NOT NULL,
    workspace_id uuid,
    person_id uuid,
    actor_type text NOT NULL,
    actor_id text,
    actor_label text,
    action text NOT NULL,
    resource_type text NOT NULL,
    resource_id text,
    before jsonb,
    after jsonb,
    ip inet,
    user_agent text,
    request_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT audit_logs_actor_type_check CHECK ((actor_type = ANY (ARRAY['person'::text, 'admin_key'::text, 'gateway_key'::text, 'operator'::text, 'system'::text, 'database'::text])))
);


--
-- Name: TABLE audit_logs; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.audit_logs IS 'Seeds 002/004 audit_logs: who changed what, written by triggers in the same transaction as the change; append-only. Never holds a secret.';


--
-- Name: COLUMN audit_logs.person_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.audit_logs.person_id IS 'The person the event is about (sign-ins, MFA, sessions) or who acted.';


--
-- Name: audit_logs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.audit_logs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: audit_logs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.audit_logs_id_seq OWNED BY public.audit_logs.id;


--
-- Name: auto_top_up_settings; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.auto_top_up_settings (
    user_id uuid NOT NULL,
    enabled boolean DEFAULT false NOT NULL,
    threshold numeric(20,6),
    package_id uuid,
    monthly_limit numeric(20,6),
    payment_method_id text,
    stripe_customer_id text,
    consecutive_failures integer DEFAULT 0 NOT NULL,
    next_try_at timestamp with time zone,
    disabled_reason text,
    updated_by uuid,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT auto_top_up_settings_check CHECK (((NOT enabled) OR ((threshold IS NOT NULL) AND (package_id IS NOT NULL) AND (monthly_limit IS NOT NULL) AND (payment_method_id IS NOT NULL)))),
    CONSTRAINT auto_top_up_settings_monthly_limit_check CHECK ((monthly_limit > (0)::numeric)),
    CONSTRAINT auto_top_up_settings_payment_method_id_check CHECK ((payment_method_id ~ '^pm_[A-Za-z0-9_]{1,250}$'::text)),
    CONSTRAINT auto_top_up_settings_threshold_check CHECK ((threshold > (0)::numeric))
);


--
-- Name: auto_top_ups; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.auto_top_ups (
    id bigint NOT NULL,
    user_id uuid NOT NULL,
    package_id uuid NOT NULL,
    credits numeric(20,6) NOT NULL,
    amount_cents bigint NOT NULL,
    currency text NOT NULL,
    payment_method_id text NOT NULL,
    stripe_customer_id text NOT NULL,
    idempotency_key text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    payment_intent_id text,
    failure_code text,
    failure_message text,
    spendable_at_start numeric(20,6),
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT auto_top_ups_amount_cents_check CHECK ((amount_cents > 0)),
    CONSTRAINT auto_top_ups_credits_check CHECK ((credits > (0)::numeric)),
    CONSTRAINT auto_top_ups_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'processing'::text, 'succeeded'::text, 'failed'::text, 'review'::text])))
);


--
-- Name: auto_top_ups_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.auto_top_ups_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: auto_top_ups_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.auto_top_ups_id_seq OWNED BY public.auto_top_ups.id;


--
-- Name: budget_alerts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.budget_alerts (
    id bigint NOT NULL,
    budget_id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    threshold integer NOT NULL,
    period_start timestamp with time zone NOT NULL,
    amount numeric(20,6) NOT NULL,
    spent numeric(20,6) NOT NULL,
    crossed_at timestamp with time zone DEFAULT now() NOT NULL,
    delivered_at timestamp with time zone
);


--
-- Name: budget_alerts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.budget_alerts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: budget_alerts_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.budget_alerts_id_seq OWNED BY public.budget_alerts.id;


--
-- Name: budget_history; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.budget_history (
    id bigint NOT NULL,
    budget_id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    period text NOT NULL,
    period_start timestamp with time zone NOT NULL,
    period_end timestamp with time zone NOT NULL,
    amount numeric(20,6) NOT NULL,
    spent numeric(20,6) NOT NULL,
    hard boolean NOT NULL,
    closed_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: budget_history_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.budget_history_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: budget_history_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.budget_history_id_seq OWNED BY public.budget_history.id;


--
-- Name: budgets_now; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.budgets_now AS
 SELECT b.id,
    b.workspace_id,
    b.scope_type,
    b.scope_id,
    b.model_pattern,
    b.amount,
    b.period,
    b.hard,
    b.alert_thresholds,
    b.created_by,
    b.created_at,
    b.updated_at,
    c.period_start,
    public.ledger_period_end(b.period, c.period_start) AS resets_at,
        CASE
            WHEN (c.period_start > b.period_start) THEN (0)::numeric
            ELSE b.spent
        END AS spent,
    b.held,
    GREATEST(((b.amount - b.held) -
        CASE
            WHEN (c.period_start > b.period_start) THEN (0)::numeric
            ELSE b.spent
        END), (0)::numeric) AS remaining
   FROM (public.budgets b
     CROSS JOIN LATERAL ( SELECT public.ledger_period_start(b.period, now(), b.period_start) AS period_start) c);


--
-- Name: credit_grants; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.credit_grants (
    id bigint NOT NULL,
    user_id uuid NOT NULL,
    transaction_id bigint NOT NULL,
    kind text NOT NULL,
    amount numeric(20,6) NOT NULL,
    remaining numeric(20,6) NOT NULL,
    priority integer DEFAULT 50 NOT NULL,
    expires_at timestamp with time zone,
    expired_at timestamp with time zone,
    expiring_told_at timestamp with time zone,
    expiry_transaction_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credit_grants_amount_check CHECK ((amount > (0)::numeric)),
    CONSTRAINT credit_grants_check CHECK ((remaining <= amount)),
    CONSTRAINT credit_grants_check1 CHECK (((expired_at IS NULL) OR (remaining = (0)::numeric))),
    CONSTRAINT credit_grants_priority_check CHECK (((priority >= 0) AND (priority <= 100))),
    CONSTRAINT credit_grants_remaining_check CHECK ((remaining >= (0)::numeric))
);


--
-- Name: TABLE credit_grants; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.credit_grants IS 'Lots of granted credits: spent after the allowance, by priority then earliest expiry, before purchased credits.';


--
-- Name: credit_grants_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.credit_grants_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: credit_grants_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.credit_grants_id_seq OWNED BY public.credit_grants.id;


--
-- Name: credit_holds; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.credit_holds (
    hold_id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    request_id text NOT NULL,
    amount numeric(20,6) NOT NULL,
    status text DEFAULT 'held'::text NOT NULL,
    description text,
    expires_at timestamp with time zone NOT NULL,
    settle_amount numeric(20,6),
    charged numeric(20,6),
    transaction_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    resolved_at timestamp with time zone,
    usage_template jsonb,
    control_budgets uuid[],
    control_slots uuid[],
    control_tokens uuid[],
    reserved_tokens numeric,
    CONSTRAINT credit_holds_amount_check CHECK ((amount > (0)::numeric)),
    CONSTRAINT credit_holds_status_check CHECK ((status = ANY (ARRAY['held'::text, 'settled'::text, 'released'::text, 'expired'::text])))
);


--
-- Name: credit_lots; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.credit_lots AS
 SELECT g.user_id,
    'grant'::text AS lot,
    g.id AS grant_id,
    g.kind,
    g.priority,
    g.expires_at,
    g.amount,
    g.remaining
   FROM public.credit_grants g
  WHERE (g.remaining > (0)::numeric)
UNION ALL
 SELECT u.user_id,
    'purchased'::text AS lot,
    NULL::bigint AS grant_id,
    'purchase'::text AS kind,
    NULL::integer AS priority,
    NULL::timestamp with time zone AS expires_at,
    NULL::numeric AS amount,
    (u.balance - u.granted_remaining) AS remaining
   FROM public.user_credits u
  WHERE ((u.balance - u.granted_remaining) > (0)::numeric);


--
-- Name: credit_packages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.credit_packages (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    credits numeric(20,6) NOT NULL,
    price_usd numeric(12,2) NOT NULL,
    discount_percentage numeric(5,2) DEFAULT 0 NOT NULL,
    description text,
    stripe_price_id text,
    sort_order integer DEFAULT 0 NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credit_packages_credits_check CHECK ((credits > (0)::numeric)),
    CONSTRAINT credit_packages_discount_percentage_check CHECK (((discount_percentage >= (0)::numeric) AND (discount_percentage <= (100)::numeric))),
    CONSTRAINT credit_packages_price_usd_check CHECK ((price_usd > (0)::numeric))
);


--
-- Name: credit_transactions_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.credit_transactions ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.credit_transactions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: dashboard_sign_outs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dashboard_sign_outs (
    nonce text NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    signed_out_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT dashboard_sign_outs_nonce_check CHECK (((length(nonce) >= 16) AND (length(nonce) <= 64)))
);


--
-- Name: TABLE dashboard_sign_outs; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dashboard_sign_outs IS 'Dashboard sessions ended by signing out, kept until they would have expired (the nonce of a signed session cookie, not a secret: the cookie needs the service''s signature too).';


--
-- Name: ledger_empty_applications; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ledger_empty_applications (
    kind text NOT NULL,
    reference text NOT NULL,
    user_id uuid NOT NULL,
    requested numeric(20,6) NOT NULL,
    balance_after numeric(20,6) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT ledger_empty_applications_kind_check CHECK ((kind = ANY (ARRAY['refund'::text, 'dispute_hold'::text])))
);


--
-- Name: ledger_reconciliation; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.ledger_reconciliation AS
 SELECT u.user_id,
    'balance_mismatch'::text AS problem,
    u.balance AS expected,
    COALESCE(t.total, (0)::numeric) AS actual,
    NULL::bigint AS transaction_id
   FROM (public.user_credits u
     LEFT JOIN ( SELECT credit_transactions.user_id,
            sum(credit_transactions.amount) AS total
           FROM public.credit_transactions
          GROUP BY credit_transactions.user_id) t USING (user_id))
  WHERE (u.balance <> COALESCE(t.total, (0)::numeric))
UNION ALL
 SELECT c.user_id,
    'chain_break'::text AS problem,
    (c.previous_after + c.amount) AS expected,
    c.balance_after AS actual,
    c.id AS transaction_id
   FROM ( SELECT credit_transactions.user_id,
            credit_transactions.id,
            credit_transactions.amount,
            credit_transactions.balance_after,
            COALESCE(lag(credit_transactions.balance_after) OVER (PARTITION BY credit_transactions.user_id ORDER BY credit_transactions.id), (0)::numeric) AS previous_after
           FROM public.credit_transactions) c
  WHERE (c.balance_after <> (c.previous_after + c.amount))
UNION ALL
 SELECT u.user_id,
    'held_mismatch'::text AS problem,
    u.credits_held AS expected,
    COALESCE(h.total, (0)::numeric) AS actual,
    NULL::bigint AS transaction_id
   FROM (public.user_credits u
     LEFT JOIN ( SELECT credit_holds.user_id,
            sum(credit_holds.amount) AS total
           FROM public.credit_holds
          WHERE (credit_holds.status = 'held'::text)
          GROUP BY credit_holds.user_id) h USING (user_id))
  WHERE (u.credits_held <> COALESCE(h.total, (0)::numeric))
UNION ALL
 SELECT u.user_id,
    'grants_mismatch'::text AS problem,
    u.granted_remaining AS expected,
    COALESCE(g.total, (0)::numeric) AS actual,
    NULL::bigint AS transaction_id
   FROM (public.user_credits u
     LEFT JOIN ( SELECT credit_grants.user_id,
            sum(credit_grants.remaining) AS total
           FROM public.credit_grants
          GROUP BY credit_grants.user_id) g USING (user_id))
  WHERE (u.granted_remaining <> COALESCE(g.total, (0)::numeric))
UNION ALL
 SELECT g.user_id,
    'expired_grant_left'::text AS problem,
    (0)::numeric AS expected,
    g.remaining AS actual,
    g.transaction_id
   FROM public.credit_grants g
  WHERE ((g.remaining > (0)::numeric) AND (g.expires_at <= (now() - '1 day'::interval)));


--
-- Name: VIEW ledger_reconciliation; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON VIEW public.ledger_reconciliation IS 'Broken invariants; empty when healthy. expired_grant_left: a lot a day past its expiry still holds credits (maintenance is not running).';


--
-- Name: llm_usage_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.llm_usage_log (
    id bigint NOT NULL,
    request_id text NOT NULL,
    user_id uuid NOT NULL,
    gateway_key_id uuid,
    provider text,
    model text NOT NULL,
    power_level text,
    prompt_tokens bigint DEFAULT 0 NOT NULL,
    completion_tokens bigint DEFAULT 0 NOT NULL,
    total_tokens bigint DEFAULT 0 NOT NULL,
    cost_usd numeric(20,10) DEFAULT 0 NOT NULL,
    cost_multiplier numeric(6,3),
    credits_used numeric(20,6) DEFAULT 0 NOT NULL,
    latency_ms integer,
    success boolean NOT NULL,
    status_code integer,
    error_message text,
    is_byok boolean DEFAULT false NOT NULL,
    hold_id uuid,
    transaction_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    usage_anomaly text,
    reported_usage text,
    api text,
    cache_read_tokens bigint DEFAULT 0 NOT NULL,
    cache_write_tokens bigint DEFAULT 0 NOT NULL,
    cache_write_1h_tokens bigint DEFAULT 0 NOT NULL,
    input_audio_tokens bigint DEFAULT 0 NOT NULL,
    cache_audio_read_tokens bigint DEFAULT 0 NOT NULL,
    input_image_tokens bigint DEFAULT 0 NOT NULL,
    cache_image_read_tokens bigint DEFAULT 0 NOT NULL,
    reasoning_tokens bigint DEFAULT 0 NOT NULL,
    output_audio_tokens bigint DEFAULT 0 NOT NULL,
    output_image_tokens bigint DEFAULT 0 NOT NULL,
    project_id uuid,
    end_user text,
    refused_by text,
    control_id uuid,
    rate_limited boolean DEFAULT false NOT NULL,
    rate_limit_remaining integer,
    CONSTRAINT llm_usage_log_cache_audio_read_tokens_check CHECK ((cache_audio_read_tokens >= 0)),
    CONSTRAINT llm_usage_log_cache_image_read_tokens_check CHECK ((cache_image_read_tokens >= 0)),
    CONSTRAINT llm_usage_log_cache_read_tokens_check CHECK ((cache_read_tokens >= 0)),
    CONSTRAINT llm_usage_log_cache_write_1h_tokens_check CHECK ((cache_write_1h_tokens >= 0)),
    CONSTRAINT llm_usage_log_cache_write_tokens_check CHECK ((cache_write_tokens >= 0)),
    CONSTRAINT llm_usage_log_completion_tokens_check CHECK ((completion_tokens >= 0)),
    CONSTRAINT llm_usage_log_cost_usd_check CHECK ((cost_usd >= (0)::numeric)),
    CONSTRAINT llm_usage_log_credits_used_check CHECK ((credits_used >= (0)::numeric)),
    CONSTRAINT llm_usage_log_input_audio_tokens_check CHECK ((input_audio_tokens >= 0)),
    CONSTRAINT llm_usage_log_input_image_tokens_check CHECK ((input_image_tokens >= 0)),
    CONSTRAINT llm_usage_log_output_audio_tokens_check CHECK ((output_audio_tokens >= 0)),
    CONSTRAINT llm_usage_log_output_image_tokens_check CHECK ((output_image_tokens >= 0)),
    CONSTRAINT llm_usage_log_prompt_tokens_check CHECK ((prompt_tokens >= 0)),
    CONSTRAINT llm_usage_log_reasoning_tokens_check CHECK ((reasoning_tokens >= 0)),
    CONSTRAINT llm_usage_log_refused_by_check CHECK ((refused_by = ANY (ARRAY['budget'::text, 'rate_limit'::text, 'key_restriction'::text]))),
    CONSTRAINT llm_usage_log_total_tokens_check CHECK ((total_tokens >= 0))
);


--
-- Name: llm_usage_log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.llm_usage_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.llm_usage_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: model_access_requests; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.model_access_requests (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    workspace_id uuid NOT NULL,
    key_id uuid NOT NULL,
    requested_by uuid,
    model text NOT NULL,
    reason text,
    status text DEFAULT 'pending'::text NOT NULL,
    decided_by uuid,
    decided_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT model_access_requests_model_check CHECK (((length(model) >= 1) AND (length(model) <= 200))),
    CONSTRAINT model_access_requests_reason_check CHECK ((length(reason) <= 1000)),
    CONSTRAINT model_access_requests_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'approved'::text, 'denied'::text])))
);


--
-- Name: model_prices; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.model_prices (
    provider text NOT NULL,
    model text NOT NULL,
    input_usd_per_mtok numeric(12,6) NOT NULL,
    output_usd_per_mtok numeric(12,6) NOT NULL,
    context_window integer DEFAULT 128000 NOT NULL,
    max_output_tokens integer DEFAULT 4096 NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    cache_read_usd_per_mtok numeric(12,6),
    cache_write_usd_per_mtok numeric(12,6),
    cache_write_1h_usd_per_mtok numeric(12,6),
    input_audio_usd_per_mtok numeric(12,6),
    cache_audio_read_usd_per_mtok numeric(12,6),
    input_image_usd_per_mtok numeric(12,6),
    cache_image_read_usd_per_mtok numeric(12,6),
    reasoning_usd_per_mtok numeric(12,6),
    output_audio_usd_per_mtok numeric(12,6),
    output_image_usd_per_mtok numeric(12,6),
    tiers jsonb DEFAULT '{}'::jsonb NOT NULL,
    synced_prices jsonb,
    synced_from text,
    CONSTRAINT model_prices_cache_audio_read_usd_per_mtok_check CHECK ((cache_audio_read_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT model_prices_cache_image_read_usd_per_mtok_check CHECK ((cache_image_read_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT model_prices_cache_read_usd_per_mtok_check CHECK ((cache_read_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT model_prices_cache_write_1h_usd_per_mtok_check CHECK ((cache_write_1h_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT model_prices_cache_write_usd_per_mtok_check CHECK ((cache_write_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT model_prices_context_window_check CHECK ((context_window > 0)),
    CONSTRAINT model_prices_input_audio_usd_per_mtok_check CHECK ((input_audio_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT model_prices_input_image_usd_per_mtok_check CHECK ((input_image_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT model_prices_input_usd_per_mtok_check CHECK ((input_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT model_prices_max_output_tokens_check CHECK ((max_output_tokens > 0)),
    CONSTRAINT model_prices_output_audio_usd_per_mtok_check CHECK ((output_audio_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT model_prices_output_image_usd_per_mtok_check CHECK ((output_image_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT model_prices_output_usd_per_mtok_check CHECK ((output_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT model_prices_reasoning_usd_per_mtok_check CHECK ((reasoning_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT model_prices_tiers_check CHECK (public.ledger_valid_tiers(tiers))
);


--
-- Name: notification_channels; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.notification_channels (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    workspace_id uuid NOT NULL,
    name text NOT NULL,
    type text NOT NULL,
    config_encrypted bytea NOT NULL,
    target_hint text NOT NULL,
    is_verified boolean DEFAULT false NOT NULL,
    verified_at timestamp with time zone,
    verification_code_encrypted bytea,
    verification_expires_at timestamp with time zone,
    verification_failures integer DEFAULT 0 NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    last_sent_at timestamp with time zone,
    failure_count integer DEFAULT 0 NOT NULL,
    last_failure_at timestamp with time zone,
    last_failure_reason text,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT notification_channels_name_check CHECK ((((length(btrim(name)) >= 1) AND (length(btrim(name)) <= 100)) AND (name !~ '[[:cntrl:]]'::text))),
    CONSTRAINT notification_channels_type_check CHECK ((type = ANY (ARRAY['email'::text, 'slack'::text, 'discord'::text, 'teams'::text, 'webhook'::text, 'pagerduty'::text])))
);


--
-- Name: notification_emails; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.notification_emails (
    id bigint NOT NULL,
    event_id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    to_email text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    sent_at timestamp with time zone,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT notification_emails_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'sent'::text, 'failed'::text])))
);


--
-- Name: notification_emails_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.notification_emails_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: notification_emails_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.notification_emails_id_seq OWNED BY public.notification_emails.id;


--
-- Name: notification_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.notification_events (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    workspace_id uuid NOT NULL,
    event_type text NOT NULL,
    data jsonb NOT NULL,
    dedup_key text,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: power_level_configs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.power_level_configs (
    power_level text NOT NULL,
    cost_multiplier numeric(6,3) NOT NULL,
    max_latency_ms integer NOT NULL,
    quality_threshold numeric(4,3) NOT NULL,
    preferred_providers text[] NOT NULL,
    description text,
    is_active boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT power_level_configs_cost_multiplier_check CHECK ((cost_multiplier > (0)::numeric)),
    CONSTRAINT power_level_configs_max_latency_ms_check CHECK ((max_latency_ms > 0)),
    CONSTRAINT power_level_configs_power_level_check CHECK ((power_level ~ '^[a-z][a-z0-9_]*$'::text)),
    CONSTRAINT power_level_configs_preferred_providers_check CHECK ((cardinality(preferred_providers) > 0)),
    CONSTRAINT power_level_configs_quality_threshold_check CHECK (((quality_threshold >= (0)::numeric) AND (quality_threshold <= (1)::numeric)))
);


--
-- Name: projects; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.projects (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    workspace_id uuid NOT NULL,
    name text NOT NULL,
    is_default boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    archived_at timestamp with time zone,
    CONSTRAINT projects_check CHECK ((NOT (is_default AND (archived_at IS NOT NULL)))),
    CONSTRAINT projects_name_check CHECK ((((length(btrim(name)) >= 1) AND (length(btrim(name)) <= 100)) AND (name !~ '[[:cntrl:]]'::text)))
);


--
-- Name: TABLE projects; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.projects IS 'Seed 004 projects: every gateway key belongs to one; each workspace has one default project, which cannot be archived.';


--
-- Name: schema_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_version (
    version text NOT NULL,
    description text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);


--
-- Name: sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sessions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    token_hash text NOT NULL,
    workspace_id uuid,
    mfa_pending boolean DEFAULT false NOT NULL,
    device text,
    ip inet,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_active_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    revoked_reason text,
    CONSTRAINT sessions_device_check CHECK ((length(device) <= 300)),
    CONSTRAINT sessions_revoked_reason_check CHECK (((revoked_reason IS NULL) OR (length(revoked_reason) <= 200))),
    CONSTRAINT sessions_token_hash_check CHECK ((length(token_hash) = 64))
);


--
-- Name: TABLE sessions; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.sessions IS 'Seed 004 sessions: a dashboard sign-in. token_hash is the SHA-256 of the nonce in the signed cookie; mfa_pending sessions only reach the TOTP step.';


--
-- Name: stripe_checkout_sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.stripe_checkout_sessions (
    session_id text NOT NULL,
    user_id uuid NOT NULL,
    package_id uuid NOT NULL,
    credits numeric(20,6) NOT NULL,
    price_cents bigint NOT NULL,
    currency text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT stripe_checkout_sessions_credits_check CHECK ((credits > (0)::numeric)),
    CONSTRAINT stripe_checkout_sessions_currency_check CHECK ((currency ~ '^[a-z]{3}$'::text)),
    CONSTRAINT stripe_checkout_sessions_price_cents_check CHECK ((price_cents > 0))
);


--
-- Name: stripe_disputes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.stripe_disputes (
    dispute_id text NOT NULL,
    payment_intent_id text NOT NULL,
    user_id uuid NOT NULL,
    amount_cents bigint NOT NULL,
    credits numeric(20,6) NOT NULL,
    hold_id uuid,
    credits_held numeric(20,6) DEFAULT 0 NOT NULL,
    status text DEFAULT 'open'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    closed_at timestamp with time zone,
    CONSTRAINT stripe_disputes_status_check CHECK ((status = ANY (ARRAY['open'::text, 'won'::text, 'lost'::text, 'closed'::text])))
);


--
-- Name: stripe_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.stripe_events (
    id text NOT NULL,
    type text NOT NULL,
    payload jsonb NOT NULL,
    livemode boolean DEFAULT false NOT NULL,
    status text DEFAULT 'received'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    processed_at timestamp with time zone,
    created timestamp with time zone,
    reference text,
    CONSTRAINT stripe_events_status_check CHECK ((status = ANY (ARRAY['received'::text, 'processed'::text, 'ignored'::text, 'deferred'::text, 'stale'::text, 'rejected'::text, 'review'::text])))
);


--
-- Name: stripe_payments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.stripe_payments (
    payment_intent_id text NOT NULL,
    checkout_session_id text,
    user_id uuid NOT NULL,
    package_id uuid,
    credits numeric(20,6) NOT NULL,
    amount_cents bigint NOT NULL,
    currency text NOT NULL,
    charge_id text,
    status text DEFAULT 'pending'::text NOT NULL,
    transaction_id bigint,
    refunded_cents bigint DEFAULT 0 NOT NULL,
    credits_refunded numeric(20,6) DEFAULT 0 NOT NULL,
    refund_shortfall numeric(20,6) DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    paid_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    review_reason text,
    CONSTRAINT stripe_payments_amount_cents_check CHECK ((amount_cents > 0)),
    CONSTRAINT stripe_payments_check CHECK ((refunded_cents <= amount_cents)),
    CONSTRAINT stripe_payments_credits_check CHECK ((credits > (0)::numeric)),
    CONSTRAINT stripe_payments_credits_refunded_check CHECK ((credits_refunded >= (0)::numeric)),
    CONSTRAINT stripe_payments_refund_shortfall_check CHECK ((refund_shortfall >= (0)::numeric)),
    CONSTRAINT stripe_payments_refunded_cents_check CHECK ((refunded_cents >= 0)),
    CONSTRAINT stripe_payments_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'paid'::text, 'partially_refunded'::text, 'refunded'::text, 'review'::text])))
);


--
-- Name: stripe_subscriptions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.stripe_subscriptions (
    subscription_id text NOT NULL,
    user_id uuid NOT NULL,
    tier text NOT NULL,
    status text NOT NULL,
    current_period_start timestamp with time zone,
    current_period_end timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    last_event_created bigint,
    last_event_rank smallint,
    last_event_id text
);


--
-- Name: subscription_tiers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.subscription_tiers (
    tier text NOT NULL,
    display_name text NOT NULL,
    price_usd numeric(12,2) NOT NULL,
    monthly_allowance numeric(20,6),
    description text,
    stripe_price_id text,
    is_active boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT subscription_tiers_monthly_allowance_check CHECK ((monthly_allowance >= (0)::numeric)),
    CONSTRAINT subscription_tiers_price_usd_check CHECK ((price_usd >= (0)::numeric)),
    CONSTRAINT subscription_tiers_tier_check CHECK ((tier ~ '^[a-z][a-z0-9_]*$'::text))
);


--
-- Name: user_backup_codes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_backup_codes (
    user_id uuid NOT NULL,
    code_hash text NOT NULL,
    used_at timestamp with time zone,
    CONSTRAINT user_backup_codes_code_hash_check CHECK ((length(code_hash) = 64))
);


--
-- Name: TABLE user_backup_codes; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.user_backup_codes IS 'One-time TOTP backup codes, SHA-256 hashed; a used code has used_at.';


--
-- Name: user_provider_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_provider_keys (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    provider text NOT NULL,
    key_name text NOT NULL,
    encrypted_key bytea NOT NULL,
    key_hint text,
    is_default boolean DEFAULT false NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    last_used_at timestamp with time zone,
    usage_count_this_month integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: user_tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_tokens (
    token_hash text NOT NULL,
    user_id uuid NOT NULL,
    purpose text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    CONSTRAINT user_tokens_purpose_check CHECK ((purpose = ANY (ARRAY['verify_email'::text, 'reset_password'::text]))),
    CONSTRAINT user_tokens_token_hash_check CHECK ((length(token_hash) = 64))
);


--
-- Name: TABLE user_tokens; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.user_tokens IS 'Email verification and password reset tokens: SHA-256 hashed, one use, expiring.';


--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    email text NOT NULL,
    name text,
    password_hash text NOT NULL,
    email_verified_at timestamp with time zone,
    mfa_secret_encrypted bytea,
    mfa_enabled_at timestamp with time zone,
    mfa_last_step bigint,
    failed_login_attempts integer DEFAULT 0 NOT NULL,
    locked_until timestamp with time zone,
    last_login_at timestamp with time zone,
    last_login_ip inet,
    password_changed_at timestamp with time zone DEFAULT now() NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT users_check CHECK (((mfa_enabled_at IS NULL) OR (mfa_secret_encrypted IS NOT NULL))),
    CONSTRAINT users_email_check CHECK ((((length(email) >= 3) AND (length(email) <= 254)) AND (email ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$'::text))),
    CONSTRAINT users_failed_login_attempts_check CHECK ((failed_login_attempts >= 0)),
    CONSTRAINT users_name_check CHECK (((name IS NULL) OR ((length(name) <= 100) AND (name !~ '[[:cntrl:]]'::text)))),
    CONSTRAINT users_password_hash_check CHECK ((password_hash ~~ '$argon2id$%'::text))
);


--
-- Name: TABLE users; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.users IS 'People who sign in (seeds 000 and 004): email unique case-insensitively, argon2id password hash, TOTP secret encrypted like BYOK keys, lockout.';


--
-- Name: webhook_deliveries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_deliveries (
    id bigint NOT NULL,
    workspace_id uuid NOT NULL,
    webhook_id uuid NOT NULL,
    message_id bigint NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    attempt_number integer NOT NULL,
    request_headers jsonb NOT NULL,
    request_body text NOT NULL,
    response_status integer,
    response_headers jsonb,
    response_body text,
    latency_ms integer,
    success boolean NOT NULL,
    error_message text,
    next_retry_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: webhook_deliveries_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.webhook_deliveries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: webhook_deliveries_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.webhook_deliveries_id_seq OWNED BY public.webhook_deliveries.id;


--
-- Name: webhook_messages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_messages (
    id bigint NOT NULL,
    event_id uuid NOT NULL,
    webhook_id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    replays integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    delivered_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT webhook_messages_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT webhook_messages_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text])))
);


--
-- Name: webhook_messages_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.webhook_messages_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: webhook_messages_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.webhook_messages_id_seq OWNED BY public.webhook_messages.id;


--
-- Name: webhooks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhooks (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    workspace_id uuid NOT NULL,
    name text NOT NULL,
    description text,
    url text NOT NULL,
    secret_encrypted bytea NOT NULL,
    previous_secret_encrypted bytea,
    previous_secret_expires_at timestamp with time zone,
    events text[] NOT NULL,
    filter_project_ids uuid[],
    timeout_ms integer DEFAULT 10000 NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    last_triggered_at timestamp with time zone,
    consecutive_failures integer DEFAULT 0 NOT NULL,
    failing_since timestamp with time zone,
    last_failure_at timestamp with time zone,
    last_failure_reason text,
    disabled_at timestamp with time zone,
    disabled_reason text,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT webhooks_consecutive_failures_check CHECK ((consecutive_failures >= 0)),
    CONSTRAINT webhooks_description_check CHECK ((length(description) <= 1000)),
    CONSTRAINT webhooks_events_check CHECK (((cardinality(events) >= 1) AND (events <@ (public.ledger_event_types() || '*'::text)))),
    CONSTRAINT webhooks_name_check CHECK ((((length(btrim(name)) >= 1) AND (length(btrim(name)) <= 100)) AND (name !~ '[[:cntrl:]]'::text))),
    CONSTRAINT webhooks_timeout_ms_check CHECK (((timeout_ms >= 1000) AND (timeout_ms <= 30000))),
    CONSTRAINT webhooks_url_check CHECK (((url ~ '^https?://'::text) AND (length(url) <= 2000)))
);


--
-- Name: TABLE webhooks; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.webhooks IS 'Seed 004 webhooks: signed (Standard Webhooks) endpoints of a workspace.';


--
-- Name: workspace_invitations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.workspace_invitations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    workspace_id uuid NOT NULL,
    email text NOT NULL,
    role text NOT NULL,
    token_hash text NOT NULL,
    invited_by text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    accepted_at timestamp with time zone,
    accepted_by uuid,
    revoked_at timestamp with time zone,
    CONSTRAINT workspace_invitations_email_check CHECK ((((length(email) >= 3) AND (length(email) <= 254)) AND (email ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$'::text))),
    CONSTRAINT workspace_invitations_role_check CHECK ((role = ANY (ARRAY['OWNER'::text, 'ADMIN'::text, 'DEVELOPER'::text, 'VIEWER'::text]))),
    CONSTRAINT workspace_invitations_token_hash_check CHECK ((length(token_hash) = 64))
);


--
-- Name: TABLE workspace_invitations; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.workspace_invitations IS 'Seed 004 workspaces_invitations: token SHA-256 hashed, one use, expiring, revocable; good for its workspace only.';


--
-- Name: workspace_members; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.workspace_members (
    workspace_id uuid NOT NULL,
    user_id uuid NOT NULL,
    role text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    billing_contact boolean DEFAULT false NOT NULL,
    CONSTRAINT workspace_members_role_check CHECK ((role = ANY (ARRAY['OWNER'::text, 'ADMIN'::text, 'DEVELOPER'::text, 'VIEWER'::text])))
);


--
-- Name: TABLE workspace_members; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.workspace_members IS 'Seed 004 workspace_members: one role per person per workspace.';


--
-- Name: workspaces; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.workspaces (
    id uuid NOT NULL,
    name text NOT NULL,
    kind text DEFAULT 'personal'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT workspaces_kind_check CHECK ((kind = ANY (ARRAY['personal'::text, 'team'::text]))),
    CONSTRAINT workspaces_name_check CHECK ((((length(btrim(name)) >= 1) AND (length(btrim(name)) <= 100)) AND (name !~ '[[:cntrl:]]'::text)))
);


--
-- Name: TABLE workspaces; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.workspaces IS 'Seed 004 workspaces. id = the wallet''s user_credits.user_id: balance, allowance, tier, subscription, power level and Stripe customer live on that row.';


--
-- Name: alert_notifications id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_notifications ALTER COLUMN id SET DEFAULT nextval('public.alert_notifications_id_seq'::regclass);


--
-- Name: audit_logs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_logs ALTER COLUMN id SET DEFAULT nextval('public.audit_logs_id_seq'::regclass);


--
-- Name: auto_top_ups id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auto_top_ups ALTER COLUMN id SET DEFAULT nextval('public.auto_top_ups_id_seq'::regclass);


--
-- Name: budget_alerts id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budget_alerts ALTER COLUMN id SET DEFAULT nextval('public.budget_alerts_id_seq'::regclass);


--
-- Name: budget_history id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budget_history ALTER COLUMN id SET DEFAULT nextval('public.budget_history_id_seq'::regclass);


--
-- Name: credit_grants id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_grants ALTER COLUMN id SET DEFAULT nextval('public.credit_grants_id_seq'::regclass);


--
-- Name: notification_emails id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notification_emails ALTER COLUMN id SET DEFAULT nextval('public.notification_emails_id_seq'::regclass);


--
-- Name: webhook_deliveries id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_deliveries ALTER COLUMN id SET DEFAULT nextval('public.webhook_deliveries_id_seq'::regclass);


--
-- Name: webhook_messages id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_messages ALTER COLUMN id SET DEFAULT nextval('public.webhook_messages_id_seq'::regclass);


--
-- Name: admin_api_keys admin_api_keys_key_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.admin_api_keys
    ADD CONSTRAINT admin_api_keys_key_hash_key UNIQUE (key_hash);


--
-- Name: admin_api_keys admin_api_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.admin_api_keys
    ADD CONSTRAINT admin_api_keys_pkey PRIMARY KEY (id);


--
-- Name: alert_events alert_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_events
    ADD CONSTRAINT alert_events_pkey PRIMARY KEY (id);


--
-- Name: alert_notifications alert_notifications_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_notifications
    ADD CONSTRAINT alert_notifications_pkey PRIMARY KEY (id);


--
-- Name: alert_rules alert_rules_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_rules
    ADD CONSTRAINT alert_rules_pkey PRIMARY KEY (id);


--
-- Name: audit_logs audit_logs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_logs
    ADD CONSTRAINT audit_logs_pkey PRIMARY KEY (id);


--
-- Name: auto_top_up_settings auto_top_up_settings_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auto_top_up_settings
    ADD CONSTRAINT auto_top_up_settings_pkey PRIMARY KEY (user_id);


--
-- Name: auto_top_ups auto_top_ups_idempotency_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auto_top_ups
    ADD CONSTRAINT auto_top_ups_idempotency_key_key UNIQUE (idempotency_key);


--
-- Name: auto_top_ups auto_top_ups_payment_intent_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auto_top_ups
    ADD CONSTRAINT auto_top_ups_payment_intent_id_key UNIQUE (payment_intent_id);


--
-- Name: auto_top_ups auto_top_ups_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auto_top_ups
    ADD CONSTRAINT auto_top_ups_pkey PRIMARY KEY (id);


--
-- Name: budget_alerts budget_alerts_budget_id_period_start_threshold_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budget_alerts
    ADD CONSTRAINT budget_alerts_budget_id_period_start_threshold_key UNIQUE (budget_id, period_start, threshold);


--
-- Name: budget_alerts budget_alerts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budget_alerts
    ADD CONSTRAINT budget_alerts_pkey PRIMARY KEY (id);


--
-- Name: budget_history budget_history_budget_id_period_start_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budget_history
    ADD CONSTRAINT budget_history_budget_id_period_start_key UNIQUE (budget_id, period_start);


--
-- Name: budget_history budget_history_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budget_history
    ADD CONSTRAINT budget_history_pkey PRIMARY KEY (id);


--
-- Name: budgets budgets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budgets
    ADD CONSTRAINT budgets_pkey PRIMARY KEY (id);


--
-- Name: credit_grants credit_grants_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_grants
    ADD CONSTRAINT credit_grants_pkey PRIMARY KEY (id);


--
-- Name: credit_grants credit_grants_transaction_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_grants
    ADD CONSTRAINT credit_grants_transaction_id_key UNIQUE (transaction_id);


--
-- Name: credit_holds credit_holds_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_holds
    ADD CONSTRAINT credit_holds_pkey PRIMARY KEY (hold_id);


--
-- Name: credit_holds credit_holds_request_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_holds
    ADD CONSTRAINT credit_holds_request_id_key UNIQUE (request_id);


--
-- Name: credit_packages credit_packages_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_packages
    ADD CONSTRAINT credit_packages_name_key UNIQUE (name);


--
-- Name: credit_packages credit_packages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_packages
    ADD CONSTRAINT credit_packages_pkey PRIMARY KEY (id);


--
-- Name: credit_transactions credit_transactions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_transactions
    ADD CONSTRAINT credit_transactions_pkey PRIMARY KEY (id);


--
-- Name: dashboard_sign_outs dashboard_sign_outs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dashboard_sign_outs
    ADD CONSTRAINT dashboard_sign_outs_pkey PRIMARY KEY (nonce);


--
-- Name: gateway_api_keys gateway_api_keys_key_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.gateway_api_keys
    ADD CONSTRAINT gateway_api_keys_key_hash_key UNIQUE (key_hash);


--
-- Name: gateway_api_keys gateway_api_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.gateway_api_keys
    ADD CONSTRAINT gateway_api_keys_pkey PRIMARY KEY (id);


--
-- Name: ledger_empty_applications ledger_empty_applications_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_empty_applications
    ADD CONSTRAINT ledger_empty_applications_pkey PRIMARY KEY (kind, reference);


--
-- Name: llm_usage_log llm_usage_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_usage_log
    ADD CONSTRAINT llm_usage_log_pkey PRIMARY KEY (id);


--
-- Name: model_access_requests model_access_requests_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.model_access_requests
    ADD CONSTRAINT model_access_requests_pkey PRIMARY KEY (id);


--
-- Name: model_prices model_prices_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.model_prices
    ADD CONSTRAINT model_prices_pkey PRIMARY KEY (provider, model);


--
-- Name: notification_channels notification_channels_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notification_channels
    ADD CONSTRAINT notification_channels_pkey PRIMARY KEY (id);


--
-- Name: notification_emails notification_emails_event_id_to_email_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notification_emails
    ADD CONSTRAINT notification_emails_event_id_to_email_key UNIQUE (event_id, to_email);


--
-- Name: notification_emails notification_emails_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notification_emails
    ADD CONSTRAINT notification_emails_pkey PRIMARY KEY (id);


--
-- Name: notification_events notification_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notification_events
    ADD CONSTRAINT notification_events_pkey PRIMARY KEY (id);


--
-- Name: notification_events notification_events_workspace_id_dedup_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notification_events
    ADD CONSTRAINT notification_events_workspace_id_dedup_key_key UNIQUE (workspace_id, dedup_key);


--
-- Name: power_level_configs power_level_configs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.power_level_configs
    ADD CONSTRAINT power_level_configs_pkey PRIMARY KEY (power_level);


--
-- Name: projects projects_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.projects
    ADD CONSTRAINT projects_pkey PRIMARY KEY (id);


--
-- Name: rate_limit_presets rate_limit_presets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rate_limit_presets
    ADD CONSTRAINT rate_limit_presets_pkey PRIMARY KEY (name);


--
-- Name: rate_limits rate_limits_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rate_limits
    ADD CONSTRAINT rate_limits_pkey PRIMARY KEY (id);


--
-- Name: schema_version schema_version_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_version
    ADD CONSTRAINT schema_version_pkey PRIMARY KEY (version);


--
-- Name: sessions sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);


--
-- Name: sessions sessions_token_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_token_hash_key UNIQUE (token_hash);


--
-- Name: stripe_checkout_sessions stripe_checkout_sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_checkout_sessions
    ADD CONSTRAINT stripe_checkout_sessions_pkey PRIMARY KEY (session_id);


--
-- Name: stripe_disputes stripe_disputes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_disputes
    ADD CONSTRAINT stripe_disputes_pkey PRIMARY KEY (dispute_id);


--
-- Name: stripe_events stripe_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_events
    ADD CONSTRAINT stripe_events_pkey PRIMARY KEY (id);


--
-- Name: stripe_payments stripe_payments_checkout_session_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_payments
    ADD CONSTRAINT stripe_payments_checkout_session_id_key UNIQUE (checkout_session_id);


--
-- Name: stripe_payments stripe_payments_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_payments
    ADD CONSTRAINT stripe_payments_pkey PRIMARY KEY (payment_intent_id);


--
-- Name: stripe_subscriptions stripe_subscriptions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_subscriptions
    ADD CONSTRAINT stripe_subscriptions_pkey PRIMARY KEY (subscription_id);


--
-- Name: stripe_subscriptions stripe_subscriptions_status_check; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.stripe_subscriptions
    ADD CONSTRAINT stripe_subscriptions_status_check CHECK ((status = ANY (ARRAY['incomplete'::text, 'incomplete_expired'::text, 'trialing'::text, 'active'::text, 'past_due'::text, 'canceled'::text, 'unpaid'::text, 'paused'::text]))) NOT VALID;


--
-- Name: subscription_tiers subscription_tiers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.subscription_tiers
    ADD CONSTRAINT subscription_tiers_pkey PRIMARY KEY (tier);


--
-- Name: user_backup_codes user_backup_codes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_backup_codes
    ADD CONSTRAINT user_backup_codes_pkey PRIMARY KEY (user_id, code_hash);


--
-- Name: user_credits user_credits_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_credits
    ADD CONSTRAINT user_credits_pkey PRIMARY KEY (user_id);


--
-- Name: user_credits user_credits_stripe_customer_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_credits
    ADD CONSTRAINT user_credits_stripe_customer_id_key UNIQUE (stripe_customer_id);


--
-- Name: user_provider_keys user_provider_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_provider_keys
    ADD CONSTRAINT user_provider_keys_pkey PRIMARY KEY (id);


--
-- Name: user_tokens user_tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_tokens
    ADD CONSTRAINT user_tokens_pkey PRIMARY KEY (token_hash);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: webhook_deliveries webhook_deliveries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id);


--
-- Name: webhook_messages webhook_messages_event_id_webhook_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_messages
    ADD CONSTRAINT webhook_messages_event_id_webhook_id_key UNIQUE (event_id, webhook_id);


--
-- Name: webhook_messages webhook_messages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_messages
    ADD CONSTRAINT webhook_messages_pkey PRIMARY KEY (id);


--
-- Name: webhooks webhooks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhooks
    ADD CONSTRAINT webhooks_pkey PRIMARY KEY (id);


--
-- Name: workspace_invitations workspace_invitations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspace_invitations
    ADD CONSTRAINT workspace_invitations_pkey PRIMARY KEY (id);


--
-- Name: workspace_invitations workspace_invitations_token_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspace_invitations
    ADD CONSTRAINT workspace_invitations_token_hash_key UNIQUE (token_hash);


--
-- Name: workspace_members workspace_members_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspace_members
    ADD CONSTRAINT workspace_members_pkey PRIMARY KEY (workspace_id, user_id);


--
-- Name: workspaces workspaces_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspaces
    ADD CONSTRAINT workspaces_pkey PRIMARY KEY (id);


--
-- Name: admin_api_keys_of_workspace; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX admin_api_keys_of_workspace ON public.admin_api_keys USING btree (workspace_id);


--
-- Name: alert_events_of_workspace; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX alert_events_of_workspace ON public.alert_events USING btree (workspace_id, triggered_at DESC);


--
-- Name: alert_events_one_open; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX alert_events_one_open ON public.alert_events USING btree (rule_id) WHERE (resolved_at IS NULL);


--
-- Name: alert_notifications_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX alert_notifications_due ON public.alert_notifications USING btree (next_attempt_at) WHERE (status = 'pending'::text);


--
-- Name: alert_rules_of_workspace; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX alert_rules_of_workspace ON public.alert_rules USING btree (workspace_id, id);


--
-- Name: audit_logs_of_person; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_logs_of_person ON public.audit_logs USING btree (person_id, id) WHERE (person_id IS NOT NULL);


--
-- Name: audit_logs_of_workspace; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_logs_of_workspace ON public.audit_logs USING btree (workspace_id, id);


--
-- Name: auto_top_ups_one_in_flight; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX auto_top_ups_one_in_flight ON public.auto_top_ups USING btree (user_id) WHERE (status = ANY (ARRAY['pending'::text, 'processing'::text]));


--
-- Name: auto_top_ups_pending; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX auto_top_ups_pending ON public.auto_top_ups USING btree (created_at) WHERE (status = 'pending'::text);


--
-- Name: budget_alerts_undelivered; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX budget_alerts_undelivered ON public.budget_alerts USING btree (crossed_at) WHERE (delivered_at IS NULL);


--
-- Name: budgets_of_workspace; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX budgets_of_workspace ON public.budgets USING btree (workspace_id);


--
-- Name: credit_grants_expiring; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX credit_grants_expiring ON public.credit_grants USING btree (expires_at) WHERE ((remaining > (0)::numeric) AND (expires_at IS NOT NULL));


--
-- Name: credit_grants_open; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX credit_grants_open ON public.credit_grants USING btree (user_id, priority, expires_at, id) WHERE (remaining > (0)::numeric);


--
-- Name: gateway_api_keys_of_project; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX gateway_api_keys_of_project ON public.gateway_api_keys USING btree (project_id);


--
-- Name: idx_credit_holds_expiry; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_credit_holds_expiry ON public.credit_holds USING btree (expires_at) WHERE (status = 'held'::text);


--
-- Name: idx_credit_holds_open; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_credit_holds_open ON public.credit_holds USING btree (user_id, expires_at) WHERE (status = 'held'::text);


--
-- Name: idx_credit_transactions_reference; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_credit_transactions_reference ON public.credit_transactions USING btree (transaction_type, reference_id) WHERE (reference_id IS NOT NULL);


--
-- Name: idx_credit_transactions_type; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_credit_transactions_type ON public.credit_transactions USING btree (transaction_type);


--
-- Name: idx_credit_transactions_user_date; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_credit_transactions_user_date ON public.credit_transactions USING btree (user_id, created_at DESC);


--
-- Name: idx_gateway_api_keys_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_gateway_api_keys_user ON public.gateway_api_keys USING btree (user_id);


--
-- Name: idx_llm_usage_log_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_llm_usage_log_created_at ON public.llm_usage_log USING btree (created_at);


--
-- Name: idx_llm_usage_log_hold; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_llm_usage_log_hold ON public.llm_usage_log USING btree (hold_id) WHERE (hold_id IS NOT NULL);


--
-- Name: idx_llm_usage_log_model; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_llm_usage_log_model ON public.llm_usage_log USING btree (model);


--
-- Name: idx_llm_usage_log_provider; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_llm_usage_log_provider ON public.llm_usage_log USING btree (provider);


--
-- Name: idx_llm_usage_log_request_id; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_llm_usage_log_request_id ON public.llm_usage_log USING btree (request_id);


--
-- Name: idx_llm_usage_log_success; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_llm_usage_log_success ON public.llm_usage_log USING btree (success);


--
-- Name: idx_llm_usage_log_user_date; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_llm_usage_log_user_date ON public.llm_usage_log USING btree (user_id, created_at DESC);


--
-- Name: idx_stripe_checkout_sessions_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_stripe_checkout_sessions_user ON public.stripe_checkout_sessions USING btree (user_id, created_at DESC);


--
-- Name: idx_stripe_events_open; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_stripe_events_open ON public.stripe_events USING btree (received_at) WHERE (status = ANY (ARRAY['received'::text, 'deferred'::text, 'rejected'::text, 'review'::text]));


--
-- Name: idx_stripe_events_reference; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_stripe_events_reference ON public.stripe_events USING btree (reference) WHERE (reference IS NOT NULL);


--
-- Name: idx_stripe_payments_charge; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_stripe_payments_charge ON public.stripe_payments USING btree (charge_id) WHERE (charge_id IS NOT NULL);


--
-- Name: idx_stripe_payments_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_stripe_payments_user ON public.stripe_payments USING btree (user_id, created_at DESC);


--
-- Name: idx_stripe_subscriptions_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_stripe_subscriptions_user ON public.stripe_subscriptions USING btree (user_id);


--
-- Name: idx_user_credits_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_user_credits_user_id ON public.user_credits USING btree (user_id);


--
-- Name: idx_user_provider_keys_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_user_provider_keys_user ON public.user_provider_keys USING btree (user_id, provider) WHERE is_active;


--
-- Name: llm_usage_log_project; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX llm_usage_log_project ON public.llm_usage_log USING btree (project_id, id) WHERE (project_id IS NOT NULL);


--
-- Name: llm_usage_log_refusals; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX llm_usage_log_refusals ON public.llm_usage_log USING btree (created_at) WHERE (refused_by IS NOT NULL);


--
-- Name: model_access_requests_of_workspace; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX model_access_requests_of_workspace ON public.model_access_requests USING btree (workspace_id, created_at DESC);


--
-- Name: model_access_requests_one_pending; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX model_access_requests_one_pending ON public.model_access_requests USING btree (key_id, model) WHERE (status = 'pending'::text);


--
-- Name: notification_channels_of_workspace; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notification_channels_of_workspace ON public.notification_channels USING btree (workspace_id, id);


--
-- Name: notification_emails_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notification_emails_due ON public.notification_emails USING btree (next_attempt_at) WHERE (status = 'pending'::text);


--
-- Name: notification_events_by_time; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notification_events_by_time ON public.notification_events USING btree (workspace_id, created_at);


--
-- Name: projects_name_per_workspace; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX projects_name_per_workspace ON public.projects USING btree (workspace_id, lower(name)) WHERE (archived_at IS NULL);


--
-- Name: projects_one_default; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX projects_one_default ON public.projects USING btree (workspace_id) WHERE is_default;


--
-- Name: rate_limits_of_workspace; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX rate_limits_of_workspace ON public.rate_limits USING btree (workspace_id);


--
-- Name: sessions_of_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sessions_of_user ON public.sessions USING btree (user_id) WHERE (revoked_at IS NULL);


--
-- Name: user_provider_keys_active_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX user_provider_keys_active_name ON public.user_provider_keys USING btree (user_id, provider, key_name) WHERE is_active;


--
-- Name: user_tokens_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX user_tokens_user ON public.user_tokens USING btree (user_id, purpose);


--
-- Name: users_email_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX users_email_key ON public.users USING btree (lower(email));


--
-- Name: webhook_deliveries_of_webhook; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_deliveries_of_webhook ON public.webhook_deliveries USING btree (webhook_id, id);


--
-- Name: webhook_messages_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_messages_due ON public.webhook_messages USING btree (next_attempt_at) WHERE (status = 'pending'::text);


--
-- Name: webhook_messages_of_webhook; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_messages_of_webhook ON public.webhook_messages USING btree (webhook_id, id);


--
-- Name: webhooks_of_workspace; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhooks_of_workspace ON public.webhooks USING btree (workspace_id, id);


--
-- Name: workspace_invitations_of_workspace; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX workspace_invitations_of_workspace ON public.workspace_invitations USING btree (workspace_id, created_at DESC);


--
-- Name: workspace_members_of_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX workspace_members_of_user ON public.workspace_members USING btree (user_id);


--
-- Name: admin_api_keys audit_admin_api_keys; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_admin_api_keys AFTER INSERT OR DELETE OR UPDATE OF name, revoked_at ON public.admin_api_keys FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('admin_api_key', 'workspace_id', '-');


--
-- Name: alert_events audit_alert_events; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_alert_events AFTER UPDATE OF acknowledged_at, resolved_at ON public.alert_events FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('alert_event', 'workspace_id', 'acknowledged_by');


--
-- Name: alert_rules audit_alert_rules; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_alert_rules AFTER INSERT OR DELETE OR UPDATE OF name, description, condition_type, threshold, window_seconds, min_requests, condition_config, severity, cooldown_secs, channel_ids, is_active ON public.alert_rules FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('alert_rule', 'workspace_id', 'created_by');


--
-- Name: auto_top_up_settings audit_auto_top_up_settings; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_auto_top_up_settings AFTER INSERT OR DELETE OR UPDATE OF enabled, threshold, package_id, monthly_limit, payment_method_id ON public.auto_top_up_settings FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('auto_top_up', 'user_id', 'updated_by');


--
-- Name: budgets audit_budgets; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_budgets AFTER INSERT OR DELETE OR UPDATE OF amount, hard, alert_thresholds, scope_type, scope_id, model_pattern, period ON public.budgets FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('budget', 'workspace_id', '-');


--
-- Name: credit_transactions audit_credit_grants; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_credit_grants AFTER INSERT ON public.credit_transactions FOR EACH ROW WHEN ((new.transaction_type = ANY (ARRAY['admin_adjustment'::text, 'bonus'::text]))) EXECUTE FUNCTION public.ledger_audit_change('grant', 'user_id', '-');


--
-- Name: credit_packages audit_credit_packages; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_credit_packages AFTER INSERT OR DELETE OR UPDATE ON public.credit_packages FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('package', '-', '-');


--
-- Name: gateway_api_keys audit_gateway_api_keys; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_gateway_api_keys AFTER INSERT OR DELETE OR UPDATE OF name, is_active, expires_at, revoked_at, project_id, allowed_models, allowed_providers, allowed_ips ON public.gateway_api_keys FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('api_key', 'user_id', 'created_by');


--
-- Name: audit_logs audit_logs_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_logs_append_only BEFORE DELETE OR UPDATE ON public.audit_logs FOR EACH ROW EXECUTE FUNCTION public.ledger_refuse_change();


--
-- Name: audit_logs audit_logs_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON public.audit_logs FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_change();


--
-- Name: model_access_requests audit_model_access_requests; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_model_access_requests AFTER INSERT OR DELETE OR UPDATE OF status ON public.model_access_requests FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('model_access_request', 'workspace_id', 'requested_by');


--
-- Name: model_prices audit_model_prices; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_model_prices AFTER INSERT OR DELETE OR UPDATE ON public.model_prices FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('price', '-', '-');


--
-- Name: notification_channels audit_notification_channels; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_notification_channels AFTER INSERT OR DELETE OR UPDATE OF name, is_active, is_verified, config_encrypted ON public.notification_channels FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('notification_channel', 'workspace_id', 'created_by');


--
-- Name: power_level_configs audit_power_level_configs; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_power_level_configs AFTER INSERT OR DELETE OR UPDATE ON public.power_level_configs FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('power_level', '-', '-');


--
-- Name: projects audit_projects; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_projects AFTER INSERT OR DELETE OR UPDATE ON public.projects FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('project', 'workspace_id', '-');


--
-- Name: rate_limit_presets audit_rate_limit_presets; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_rate_limit_presets AFTER INSERT OR DELETE OR UPDATE ON public.rate_limit_presets FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('rate_limit_preset', '-', '-');


--
-- Name: rate_limits audit_rate_limits; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_rate_limits AFTER INSERT OR DELETE OR UPDATE OF scope_type, scope_id, model_pattern, preset, strategy, requests, window_seconds, tokens_per_minute, max_concurrent ON public.rate_limits FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('rate_limit', 'workspace_id', '-');


--
-- Name: sessions audit_sessions; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_sessions AFTER UPDATE OF revoked_at ON public.sessions FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('session', '-', 'user_id');


--
-- Name: subscription_tiers audit_subscription_tiers; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_subscription_tiers AFTER INSERT OR DELETE OR UPDATE ON public.subscription_tiers FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('tier', '-', '-');


--
-- Name: user_credits audit_user_credits_notifications; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_user_credits_notifications AFTER UPDATE OF low_balance_threshold ON public.user_credits FOR EACH ROW WHEN ((old.low_balance_threshold IS DISTINCT FROM new.low_balance_threshold)) EXECUTE FUNCTION public.ledger_audit_change('wallet', 'user_id', '-');


--
-- Name: user_credits audit_user_credits_settings; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_user_credits_settings AFTER UPDATE OF tier, power_level ON public.user_credits FOR EACH ROW WHEN (((old.tier IS DISTINCT FROM new.tier) OR (old.power_level IS DISTINCT FROM new.power_level))) EXECUTE FUNCTION public.ledger_audit_change('wallet', 'user_id', '-');


--
-- Name: user_provider_keys audit_user_provider_keys; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_user_provider_keys AFTER INSERT OR DELETE OR UPDATE OF key_name, is_active, is_default, encrypted_key ON public.user_provider_keys FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('provider_key', 'user_id', '-');


--
-- Name: users audit_users; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_users AFTER INSERT OR DELETE OR UPDATE OF email, name, password_hash, email_verified_at, mfa_enabled_at ON public.users FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('person', '-', 'id');


--
-- Name: webhooks audit_webhooks; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_webhooks AFTER INSERT OR DELETE OR UPDATE OF name, description, url, events, filter_project_ids, timeout_ms, is_active, disabled_at, secret_encrypted ON public.webhooks FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('webhook', 'workspace_id', 'created_by');


--
-- Name: workspace_invitations audit_workspace_invitations; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_workspace_invitations AFTER INSERT OR DELETE OR UPDATE OF accepted_at, revoked_at ON public.workspace_invitations FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('invite', 'workspace_id', '-');


--
-- Name: workspace_members audit_workspace_members; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_workspace_members AFTER INSERT OR DELETE OR UPDATE ON public.workspace_members FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('member', 'workspace_id', 'user_id');


--
-- Name: workspaces audit_workspaces; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_workspaces AFTER INSERT OR DELETE OR UPDATE OF name, kind ON public.workspaces FOR EACH ROW EXECUTE FUNCTION public.ledger_audit_change('workspace', 'id', '-');


--
-- Name: budget_alerts budget_alerts_events; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER budget_alerts_events AFTER INSERT ON public.budget_alerts FOR EACH ROW EXECUTE FUNCTION public.ledger_budget_alert_events();


--
-- Name: budget_alerts budget_alerts_rules; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER budget_alerts_rules AFTER INSERT ON public.budget_alerts FOR EACH ROW EXECUTE FUNCTION public.ledger_budget_alert_rules();


--
-- Name: budgets budgets_period_start; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER budgets_period_start BEFORE INSERT ON public.budgets FOR EACH ROW EXECUTE FUNCTION public.ledger_budget_starts();


--
-- Name: budgets budgets_scope; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER budgets_scope BEFORE INSERT OR UPDATE OF scope_type, scope_id, workspace_id ON public.budgets FOR EACH ROW EXECUTE FUNCTION public.ledger_check_control_scope();


--
-- Name: credit_holds credit_holds_controls_closed; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER credit_holds_controls_closed AFTER UPDATE OF status ON public.credit_holds FOR EACH ROW WHEN (((old.status IS DISTINCT FROM new.status) AND ((new.control_budgets IS NOT NULL) OR (new.control_slots IS NOT NULL) OR (new.control_tokens IS NOT NULL)))) EXECUTE FUNCTION public.ledger_hold_closed();


--
-- Name: credit_transactions credit_transactions_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER credit_transactions_append_only BEFORE DELETE OR UPDATE ON public.credit_transactions FOR EACH ROW EXECUTE FUNCTION public.ledger_refuse_change();


--
-- Name: credit_transactions credit_transactions_events; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER credit_transactions_events AFTER INSERT ON public.credit_transactions FOR EACH ROW WHEN ((new.transaction_type = ANY (ARRAY['purchase'::text, 'refund'::text]))) EXECUTE FUNCTION public.ledger_credit_events();


--
-- Name: credit_transactions credit_transactions_grant_lot; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER credit_transactions_grant_lot AFTER INSERT ON public.credit_transactions FOR EACH ROW WHEN (((new.transaction_type = ANY (ARRAY['bonus'::text, 'admin_adjustment'::text])) AND (new.amount > (0)::numeric))) EXECUTE FUNCTION public.ledger_grant_lot();


--
-- Name: gateway_api_keys gateway_api_keys_project; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER gateway_api_keys_project BEFORE INSERT OR UPDATE OF project_id, user_id ON public.gateway_api_keys FOR EACH ROW EXECUTE FUNCTION public.ledger_key_project();


--
-- Name: llm_usage_log llm_usage_log_events; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER llm_usage_log_events AFTER INSERT ON public.llm_usage_log FOR EACH ROW EXECUTE FUNCTION public.ledger_usage_events();


--
-- Name: llm_usage_log llm_usage_log_project; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER llm_usage_log_project BEFORE INSERT ON public.llm_usage_log FOR EACH ROW EXECUTE FUNCTION public.ledger_usage_project();


--
-- Name: rate_limits rate_limits_scope; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER rate_limits_scope BEFORE INSERT OR UPDATE OF scope_type, scope_id, workspace_id ON public.rate_limits FOR EACH ROW EXECUTE FUNCTION public.ledger_check_control_scope();


--
-- Name: user_credits user_credits_auto_top_up; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER user_credits_auto_top_up AFTER UPDATE ON public.user_credits FOR EACH ROW WHEN (((new.auto_top_up_threshold IS NOT NULL) AND (new.monthly_allowance IS NOT NULL) AND ((new.balance + GREATEST((new.monthly_allowance - new.credits_used_this_month), (0)::numeric)) < new.auto_top_up_threshold))) EXECUTE FUNCTION public.ledger_wallet_auto_top_up();


--
-- Name: user_credits user_credits_balance_low; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER user_credits_balance_low AFTER UPDATE ON public.user_credits FOR EACH ROW WHEN (((new.low_balance_threshold IS NOT NULL) AND (new.monthly_allowance IS NOT NULL) AND ((new.balance + GREATEST((new.monthly_allowance - new.credits_used_this_month), (0)::numeric)) < new.low_balance_threshold) AND ((old.monthly_allowance IS NULL) OR ((old.balance + GREATEST((old.monthly_allowance - old.credits_used_this_month), (0)::numeric)) >= new.low_balance_threshold)))) EXECUTE FUNCTION public.ledger_balance_low_event();


--
-- Name: user_credits user_credits_guard_balance; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER user_credits_guard_balance BEFORE INSERT OR UPDATE OF balance ON public.user_credits FOR EACH ROW EXECUTE FUNCTION public.ledger_guard_balance();


--
-- Name: user_credits user_credits_keep_cycle_anchor; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER user_credits_keep_cycle_anchor BEFORE INSERT OR UPDATE OF billing_cycle_start, billing_cycle_anchor ON public.user_credits FOR EACH ROW EXECUTE FUNCTION public.ledger_keep_cycle_anchor();


--
-- Name: user_credits user_credits_workspace; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER user_credits_workspace AFTER INSERT ON public.user_credits FOR EACH ROW EXECUTE FUNCTION public.ledger_wallet_workspace();


--
-- Name: workspace_members workspace_members_keep_an_owner; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER workspace_members_keep_an_owner AFTER DELETE OR UPDATE OF role ON public.workspace_members FOR EACH ROW EXECUTE FUNCTION public.ledger_keep_an_owner();


--
-- Name: admin_api_keys admin_api_keys_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.admin_api_keys
    ADD CONSTRAINT admin_api_keys_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;


--
-- Name: alert_events alert_events_rule_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_events
    ADD CONSTRAINT alert_events_rule_id_fkey FOREIGN KEY (rule_id) REFERENCES public.alert_rules(id) ON DELETE CASCADE;


--
-- Name: alert_notifications alert_notifications_alert_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_notifications
    ADD CONSTRAINT alert_notifications_alert_event_id_fkey FOREIGN KEY (alert_event_id) REFERENCES public.alert_events(id) ON DELETE CASCADE;


--
-- Name: alert_notifications alert_notifications_channel_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_notifications
    ADD CONSTRAINT alert_notifications_channel_id_fkey FOREIGN KEY (channel_id) REFERENCES public.notification_channels(id) ON DELETE CASCADE;


--
-- Name: alert_notifications alert_notifications_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_notifications
    ADD CONSTRAINT alert_notifications_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.notification_events(id) ON DELETE CASCADE;


--
-- Name: alert_rules alert_rules_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_rules
    ADD CONSTRAINT alert_rules_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;


--
-- Name: auto_top_up_settings auto_top_up_settings_package_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auto_top_up_settings
    ADD CONSTRAINT auto_top_up_settings_package_id_fkey FOREIGN KEY (package_id) REFERENCES public.credit_packages(id);


--
-- Name: auto_top_up_settings auto_top_up_settings_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auto_top_up_settings
    ADD CONSTRAINT auto_top_up_settings_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id) ON DELETE CASCADE;


--
-- Name: auto_top_ups auto_top_ups_package_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auto_top_ups
    ADD CONSTRAINT auto_top_ups_package_id_fkey FOREIGN KEY (package_id) REFERENCES public.credit_packages(id);


--
-- Name: auto_top_ups auto_top_ups_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auto_top_ups
    ADD CONSTRAINT auto_top_ups_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id) ON DELETE CASCADE;


--
-- Name: budget_alerts budget_alerts_budget_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budget_alerts
    ADD CONSTRAINT budget_alerts_budget_id_fkey FOREIGN KEY (budget_id) REFERENCES public.budgets(id) ON DELETE CASCADE;


--
-- Name: budget_history budget_history_budget_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budget_history
    ADD CONSTRAINT budget_history_budget_id_fkey FOREIGN KEY (budget_id) REFERENCES public.budgets(id) ON DELETE CASCADE;


--
-- Name: budgets budgets_created_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budgets
    ADD CONSTRAINT budgets_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.users(id) ON DELETE SET NULL;


--
-- Name: budgets budgets_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budgets
    ADD CONSTRAINT budgets_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;


--
-- Name: credit_grants credit_grants_expiry_transaction_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_grants
    ADD CONSTRAINT credit_grants_expiry_transaction_id_fkey FOREIGN KEY (expiry_transaction_id) REFERENCES public.credit_transactions(id);


--
-- Name: credit_grants credit_grants_transaction_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_grants
    ADD CONSTRAINT credit_grants_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES public.credit_transactions(id);


--
-- Name: credit_grants credit_grants_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_grants
    ADD CONSTRAINT credit_grants_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id) ON DELETE CASCADE;


--
-- Name: credit_holds credit_holds_transaction_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_holds
    ADD CONSTRAINT credit_holds_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES public.credit_transactions(id);


--
-- Name: credit_holds credit_holds_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_holds
    ADD CONSTRAINT credit_holds_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id);


--
-- Name: credit_transactions credit_transactions_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.credit_transactions
    ADD CONSTRAINT credit_transactions_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id);


--
-- Name: gateway_api_keys gateway_api_keys_created_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.gateway_api_keys
    ADD CONSTRAINT gateway_api_keys_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.users(id) ON DELETE SET NULL;


--
-- Name: gateway_api_keys gateway_api_keys_project_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.gateway_api_keys
    ADD CONSTRAINT gateway_api_keys_project_id_fkey FOREIGN KEY (project_id) REFERENCES public.projects(id);


--
-- Name: gateway_api_keys gateway_api_keys_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.gateway_api_keys
    ADD CONSTRAINT gateway_api_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id);


--
-- Name: ledger_empty_applications ledger_empty_applications_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_empty_applications
    ADD CONSTRAINT ledger_empty_applications_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id);


--
-- Name: llm_usage_log llm_usage_log_gateway_key_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_usage_log
    ADD CONSTRAINT llm_usage_log_gateway_key_id_fkey FOREIGN KEY (gateway_key_id) REFERENCES public.gateway_api_keys(id);


--
-- Name: llm_usage_log llm_usage_log_hold_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_usage_log
    ADD CONSTRAINT llm_usage_log_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES public.credit_holds(hold_id);


--
-- Name: llm_usage_log llm_usage_log_transaction_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_usage_log
    ADD CONSTRAINT llm_usage_log_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES public.credit_transactions(id);


--
-- Name: llm_usage_log llm_usage_log_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_usage_log
    ADD CONSTRAINT llm_usage_log_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id);


--
-- Name: model_access_requests model_access_requests_decided_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.model_access_requests
    ADD CONSTRAINT model_access_requests_decided_by_fkey FOREIGN KEY (decided_by) REFERENCES public.users(id) ON DELETE SET NULL;


--
-- Name: model_access_requests model_access_requests_key_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.model_access_requests
    ADD CONSTRAINT model_access_requests_key_id_fkey FOREIGN KEY (key_id) REFERENCES public.gateway_api_keys(id) ON DELETE CASCADE;


--
-- Name: model_access_requests model_access_requests_requested_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.model_access_requests
    ADD CONSTRAINT model_access_requests_requested_by_fkey FOREIGN KEY (requested_by) REFERENCES public.users(id) ON DELETE SET NULL;


--
-- Name: model_access_requests model_access_requests_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.model_access_requests
    ADD CONSTRAINT model_access_requests_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;


--
-- Name: notification_channels notification_channels_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notification_channels
    ADD CONSTRAINT notification_channels_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;


--
-- Name: notification_emails notification_emails_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notification_emails
    ADD CONSTRAINT notification_emails_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.notification_events(id) ON DELETE CASCADE;


--
-- Name: projects projects_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.projects
    ADD CONSTRAINT projects_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;


--
-- Name: rate_limits rate_limits_created_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rate_limits
    ADD CONSTRAINT rate_limits_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.users(id) ON DELETE SET NULL;


--
-- Name: rate_limits rate_limits_preset_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rate_limits
    ADD CONSTRAINT rate_limits_preset_fkey FOREIGN KEY (preset) REFERENCES public.rate_limit_presets(name) ON UPDATE CASCADE;


--
-- Name: rate_limits rate_limits_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rate_limits
    ADD CONSTRAINT rate_limits_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;


--
-- Name: sessions sessions_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;


--
-- Name: sessions sessions_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE SET NULL;


--
-- Name: stripe_checkout_sessions stripe_checkout_sessions_package_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_checkout_sessions
    ADD CONSTRAINT stripe_checkout_sessions_package_id_fkey FOREIGN KEY (package_id) REFERENCES public.credit_packages(id);


--
-- Name: stripe_checkout_sessions stripe_checkout_sessions_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_checkout_sessions
    ADD CONSTRAINT stripe_checkout_sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id);


--
-- Name: stripe_disputes stripe_disputes_hold_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_disputes
    ADD CONSTRAINT stripe_disputes_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES public.credit_holds(hold_id);


--
-- Name: stripe_disputes stripe_disputes_payment_intent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_disputes
    ADD CONSTRAINT stripe_disputes_payment_intent_id_fkey FOREIGN KEY (payment_intent_id) REFERENCES public.stripe_payments(payment_intent_id);


--
-- Name: stripe_disputes stripe_disputes_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_disputes
    ADD CONSTRAINT stripe_disputes_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id);


--
-- Name: stripe_payments stripe_payments_package_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_payments
    ADD CONSTRAINT stripe_payments_package_id_fkey FOREIGN KEY (package_id) REFERENCES public.credit_packages(id);


--
-- Name: stripe_payments stripe_payments_transaction_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_payments
    ADD CONSTRAINT stripe_payments_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES public.credit_transactions(id);


--
-- Name: stripe_payments stripe_payments_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_payments
    ADD CONSTRAINT stripe_payments_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id);


--
-- Name: stripe_subscriptions stripe_subscriptions_tier_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_subscriptions
    ADD CONSTRAINT stripe_subscriptions_tier_fkey FOREIGN KEY (tier) REFERENCES public.subscription_tiers(tier);


--
-- Name: stripe_subscriptions stripe_subscriptions_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stripe_subscriptions
    ADD CONSTRAINT stripe_subscriptions_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id);


--
-- Name: user_backup_codes user_backup_codes_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_backup_codes
    ADD CONSTRAINT user_backup_codes_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;


--
-- Name: user_credits user_credits_power_level_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_credits
    ADD CONSTRAINT user_credits_power_level_fkey FOREIGN KEY (power_level) REFERENCES public.power_level_configs(power_level);


--
-- Name: user_credits user_credits_tier_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_credits
    ADD CONSTRAINT user_credits_tier_fkey FOREIGN KEY (tier) REFERENCES public.subscription_tiers(tier);


--
-- Name: user_provider_keys user_provider_keys_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_provider_keys
    ADD CONSTRAINT user_provider_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_credits(user_id);


--
-- Name: user_tokens user_tokens_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_tokens
    ADD CONSTRAINT user_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;


--
-- Name: webhook_deliveries webhook_deliveries_message_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_message_id_fkey FOREIGN KEY (message_id) REFERENCES public.webhook_messages(id) ON DELETE CASCADE;


--
-- Name: webhook_deliveries webhook_deliveries_webhook_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_webhook_id_fkey FOREIGN KEY (webhook_id) REFERENCES public.webhooks(id) ON DELETE CASCADE;


--
-- Name: webhook_messages webhook_messages_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_messages
    ADD CONSTRAINT webhook_messages_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.notification_events(id) ON DELETE CASCADE;


--
-- Name: webhook_messages webhook_messages_webhook_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_messages
    ADD CONSTRAINT webhook_messages_webhook_id_fkey FOREIGN KEY (webhook_id) REFERENCES public.webhooks(id) ON DELETE CASCADE;


--
-- Name: webhooks webhooks_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhooks
    ADD CONSTRAINT webhooks_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;


--
-- Name: workspace_invitations workspace_invitations_accepted_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspace_invitations
    ADD CONSTRAINT workspace_invitations_accepted_by_fkey FOREIGN KEY (accepted_by) REFERENCES public.users(id) ON DELETE SET NULL;


--
-- Name: workspace_invitations workspace_invitations_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspace_invitations
    ADD CONSTRAINT workspace_invitations_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;


--
-- Name: workspace_members workspace_members_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspace_members
    ADD CONSTRAINT workspace_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;


--
-- Name: workspace_members workspace_members_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspace_members
    ADD CONSTRAINT workspace_members_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;


--
-- Name: workspaces workspaces_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspaces
    ADD CONSTRAINT workspaces_id_fkey FOREIGN KEY (id) REFERENCES public.user_credits(user_id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--
