-- Group commit: the metered calls of concurrent requests, sent as one statement and committed
-- together.
--
-- A process with many requests in flight gathers the settle_llm_request, fail_llm_request and
-- begin_llm_request calls that arrive while its previous gathering is being written, and sends
-- them as one call of ledger_metered_calls. It runs the one-request function once per element:
-- every settle, then every failure, then every begin (what settles frees, the begins after it may
-- hold), each kind in the order given, inside the statement's one transaction. The books are those
-- of the same calls made one by one in that order (the state machine in tests/money compares the
-- two), while the round trip, the commit (its WAL flush) and the hot wallet's row lock are paid
-- once per gathering. A request is answered only after the statement holding its call committed.
--
-- Every wallet a gathering touches is locked first, in user_id order, so two gatherings (of one
-- process or of several) never wait on each other's wallets in a cycle. If any element raises, the
-- whole statement rolls back and the caller runs each element alone, as before this migration: an
-- error is the element's own, never its neighbours'.
--
-- Elements come as parallel arrays, one per parameter of the one-request function (text where it
-- takes jsonb: each is cast as that function's callers cast it). Each row carries `ord`, the
-- element's 1-based position counting the settles, then the failures, then the begins, and the
-- columns of its own function's row (the others NULL); a begin whose key is unknown has no row.

-- Locks the wallets of `p_user_ids` in user_id order (NULLs and repeats ignored).
CREATE FUNCTION ledger_lock_wallets(p_user_ids uuid[])
RETURNS void
LANGUAGE sql AS $$
    SELECT count(*) FROM (
        SELECT 1 FROM user_credits WHERE user_id = ANY(p_user_ids) ORDER BY user_id FOR UPDATE
    ) locked;
$$;

CREATE FUNCTION ledger_metered_calls(
    -- settle_llm_request
    p_settle_hold_ids uuid[], p_settle_credits numeric[], p_settle_usages text[], p_settle_byok_key_ids uuid[],
    -- fail_llm_request
    p_fail_hold_ids uuid[], p_fail_usages text[],
    -- begin_llm_request
    p_key_hashes text[], p_power_levels text[], p_holds text[], p_byok boolean[], p_request_ids text[],
    p_ttls interval[], p_descriptions text[], p_usages text[], p_facts text[])
RETURNS TABLE (ord integer,
               -- settle's
               success boolean, new_balance numeric, transaction_id bigint, charged numeric, shortfall numeric,
               -- settle's and begin's
               available numeric,
               -- fail's
               released numeric,
               -- begin's
               key_id uuid, user_id uuid, power_level text, hold_state text, hold_id uuid, own_keys jsonb,
               controls jsonb, allowed_providers text[])
LANGUAGE plpgsql AS $$
DECLARE
    v_settles  integer := coalesce(array_length(p_settle_hold_ids, 1), 0);
    v_failures integer := coalesce(array_length(p_fail_hold_ids, 1), 0);
BEGIN
    PERFORM ledger_lock_wallets(
        ARRAY(SELECT h.user_id FROM credit_holds h WHERE h.hold_id = ANY(p_settle_hold_ids || p_fail_hold_ids)
              UNION
              SELECT k.user_id FROM gateway_api_keys k WHERE k.key_hash = ANY(p_key_hashes)));
    FOR i IN 1 .. v_settles LOOP
        RETURN QUERY
            SELECT i, s.success, s.new_balance, s.transaction_id, s.charged, s.shortfall, s.available, NULL::numeric,
                   NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::uuid, NULL::jsonb, NULL::jsonb, NULL::text[]
              FROM settle_llm_request(p_settle_hold_ids[i], p_settle_credits[i], p_settle_usages[i]::jsonb,
                                      p_settle_byok_key_ids[i]) s;
    END LOOP;
    FOR i IN 1 .. v_failures LOOP
        RETURN QUERY
            SELECT v_settles + i, NULL::boolean, NULL::numeric, NULL::bigint, NULL::numeric, NULL::numeric,
                   NULL::numeric, fail_llm_request(p_fail_hold_ids[i], p_fail_usages[i]::jsonb),
                   NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::uuid, NULL::jsonb, NULL::jsonb, NULL::text[];
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(p_key_hashes, 1), 0) LOOP
        RETURN QUERY
            SELECT v_settles + v_failures + i, NULL::boolean, NULL::numeric, NULL::bigint, NULL::numeric,
                   NULL::numeric, b.available, NULL::numeric, b.key_id, b.user_id, b.power_level, b.hold_state,
                   b.hold_id, b.own_keys, b.controls, b.allowed_providers
              FROM begin_llm_request(p_key_hashes[i], p_power_levels[i], p_holds[i]::jsonb, p_byok[i],
                                     p_request_ids[i], p_ttls[i], p_descriptions[i], p_usages[i]::jsonb,
                                     p_facts[i]::jsonb) b;
    END LOOP;
END $$;
