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
-- Nothing in a gathering waits for a lock someone else holds: it first touches the keys its begins
-- will touch (last_used_at, at most once a minute, as begin_llm_request does) in id order, then
-- locks its wallets in user_id order, then their budgets and rate limits and its settles' BYOK
-- keys, all with SKIP LOCKED. A call whose wallet (or key to touch, or one of those rows) is
-- locked elsewhere (another process's gathering, a maintenance run, an operator's
-- transaction) is not run: its row says `deferred`, and the caller sends the deferred calls of
-- that wallet again, in their order, as a statement of their own that waits for its locks
-- (p_wait): keys first, then its one wallet, the order a begin alone takes them in. So one busy
-- wallet never stalls other wallets' requests, and no statement here can be part of a lock cycle:
-- a gathering holds only locks it took without waiting, and a waiting statement locks one wallet,
-- after its keys, as one call alone always did.
--
-- If any call raises, the whole statement rolls back and the caller runs each call alone: an
-- error is the call's own, never its neighbours'.
--
-- Elements come as parallel arrays, one per parameter of the one-request function (text where it
-- takes jsonb: each is cast as that function's callers cast it). Each row carries `ord`, the
-- element's 1-based position counting the settles, then the failures, then the begins, and
-- either `deferred` with the wallet it waits for in `user_id`, or the columns of its own function's
-- row (the others NULL); a begin whose key is unknown has no row.

CREATE FUNCTION ledger_metered_calls(
    -- false: take only the locks free now and defer the other calls; true: wait for every lock
    -- (the caller sends the deferred calls of one wallet this way, one wallet a statement)
    p_wait boolean,
    -- settle_llm_request
    p_settle_hold_ids uuid[], p_settle_credits numeric[], p_settle_usages text[], p_settle_byok_key_ids uuid[],
    -- fail_llm_request
    p_fail_hold_ids uuid[], p_fail_usages text[],
    -- begin_llm_request
    p_key_hashes text[], p_power_levels text[], p_holds text[], p_byok boolean[], p_request_ids text[],
    p_ttls interval[], p_descriptions text[], p_usages text[], p_facts text[])
RETURNS TABLE (ord integer, deferred boolean,
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
