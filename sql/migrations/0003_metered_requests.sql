-- The metered proxy's SQL: users, the settle-and-log call per LLM request, the demo provider.
--
-- New project SQLSTATEs:
--   LG010 unknown tier   LG011 unknown power level

-- The built-in `demo` provider (used when no provider is configured) serves the seed's models at
-- their real prices, so a newcomer's first calls are billed like real ones.
INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window, max_output_tokens)
SELECT 'demo', model, input_usd_per_mtok, output_usd_per_mtok, context_window, max_output_tokens
  FROM model_prices WHERE provider IN ('openai', 'anthropic');

-- Per-request usage rows are found by hold when a request is settled twice.
CREATE INDEX idx_llm_usage_log_hold ON llm_usage_log (hold_id) WHERE hold_id IS NOT NULL;

-- The monthly allowance of a tier (NULL = unlimited); LG010 for an unknown tier, or an inactive
-- one unless p_inactive_ok (a subscriber renewing a tier taken off sale keeps it).
CREATE FUNCTION ledger_tier_allowance(p_tier text, p_inactive_ok boolean DEFAULT false) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
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

-- Raises LG011 unless p_power_level is an active power level.
CREATE FUNCTION ledger_require_power_level(p_power_level text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM 1 FROM power_level_configs WHERE power_level = p_power_level AND is_active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown power level %', coalesce(quote_literal(p_power_level), 'NULL')
            USING ERRCODE = 'LG011',
                  HINT = (SELECT 'Known power levels: ' || string_agg(power_level, ', ' ORDER BY cost_multiplier)
                            FROM power_level_configs WHERE is_active);
    END IF;
END $$;

-- create_ledger_user: a new account on a tier (its monthly allowance copied in) and a power
-- level, with a zero balance and a billing cycle starting now.
CREATE FUNCTION create_ledger_user(p_email text DEFAULT NULL, p_tier text DEFAULT 'trial',
                                   p_power_level text DEFAULT 'balanced')
RETURNS user_credits
LANGUAGE plpgsql AS $$
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

-- The llm_usage_log row described by p_usage (a JSON object with llm_usage_log's column names),
-- written once per request id: a replay leaves the first row as it is.
CREATE FUNCTION ledger_log_usage(p_usage jsonb, p_hold_id uuid, p_credits numeric, p_transaction_id bigint,
                                 p_success boolean)
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
         status_code, error_message, is_byok, hold_id, transaction_id)
    VALUES
        (v_row.request_id, v_row.user_id, v_row.gateway_key_id, v_row.provider, v_row.model, v_row.power_level,
         coalesce(v_row.prompt_tokens, 0), coalesce(v_row.completion_tokens, 0),
         coalesce(v_row.prompt_tokens, 0) + coalesce(v_row.completion_tokens, 0),
         coalesce(v_row.cost_usd, 0), v_row.cost_multiplier, p_credits, v_row.latency_ms, p_success,
         v_row.status_code, v_row.error_message, coalesce(v_row.is_byok, false), p_hold_id, p_transaction_id)
    ON CONFLICT (request_id) DO NOTHING;
END $$;

-- settle_llm_request: in one call, settles the request's hold for its actual cost in credits
-- (settle_credit_hold: allowance first, never below zero, the rest released) and writes its
-- llm_usage_log row (success unless p_usage says otherwise: a stream that broke or was abandoned
-- is billed for what it generated but logged as failed). p_hold_id NULL is a request that needed no hold (a BYOK request with no
-- fee): p_credits must then be 0 and only the usage row is written. Safe to repeat. `available`
-- is what the user can still spend afterwards (allowance left + balance - holds; NULL = unlimited).
CREATE FUNCTION settle_llm_request(p_hold_id uuid, p_credits numeric, p_usage jsonb)
RETURNS TABLE (success boolean, new_balance numeric, transaction_id bigint, charged numeric, shortfall numeric,
               available numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v_settled record;
    v_user_id uuid := (p_usage ->> 'user_id')::uuid;
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

    SELECT * INTO v_settled
      FROM settle_credit_hold(p_hold_id, p_credits,
                              format('%s via %s (%s)', p_usage ->> 'model', p_usage ->> 'provider',
                                     p_usage ->> 'power_level'));
    PERFORM ledger_log_usage(p_usage, p_hold_id, v_settled.charged, v_settled.transaction_id,
                             coalesce((p_usage ->> 'success')::boolean, true));
    RETURN QUERY SELECT v_settled.success, v_settled.new_balance, v_settled.transaction_id,
                        v_settled.charged, v_settled.shortfall, ledger_spendable(u) - u.credits_held
                   FROM user_credits u WHERE u.user_id = v_user_id;
END $$;

-- fail_llm_request: a request that produced nothing billable: its hold (if any) is released,
-- nothing is charged, and a failed llm_usage_log row records why.
CREATE FUNCTION fail_llm_request(p_hold_id uuid, p_usage jsonb)
RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
    v_released numeric := 0;
BEGIN
    IF p_hold_id IS NOT NULL THEN
        SELECT released INTO v_released FROM release_credit_hold(p_hold_id);
    END IF;
    PERFORM ledger_log_usage(p_usage, p_hold_id, 0, NULL, false);
    RETURN v_released;
END $$;
