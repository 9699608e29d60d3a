-- settle_llm_request (three arguments; the four-argument one of 0012 calls it): as in 0008, and a
-- settle that charges less than the request's cost because the account could no longer cover it
-- (credits taken back by a refund, a lost dispute or an operator while the request ran, or a hold
-- that expired and gave its credits back) says so on the usage row: `usage_anomaly` gets
-- 'charged X of its cost Y: ...'. Before, the row showed the smaller charge and nothing else, so
-- the gap between cost_usd and credits_used had no explanation.
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
