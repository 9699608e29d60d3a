-- A metered request's SQL in two round trips: one that finds the gateway key's owner and holds
-- the request's cost (begin_llm_request), one that settles it, writes its usage row and counts the
-- BYOK key's use (settle_llm_request's four-argument form). Nothing here changes what a request
-- costs or how a hold behaves: both call the functions of 0008 (reserve_llm_request,
-- settle_llm_request) that already guarantee that.

-- begin_llm_request: authenticate + reserve in one call.
--
-- Finds the active, unexpired gateway key whose SHA-256 is p_key_hash, and its owner; no row
-- back means the key is unknown, revoked or expired, and nothing was touched. last_used_at is
-- touched at most once a minute (a burst on one key does not queue on the key's row).
-- The power level is p_power_level, else the owner's. p_holds carries, per power level, what the
-- request can cost at most on the platform's providers and the level's multiplier:
--   {"balanced": {"credits": "1.25", "multiplier": "1.0"}, ...}
-- hold_state says what was done:
--   held          the level's credits were reserved (reserve_llm_request: hold_id, available)
--   refused       not enough credits: nothing held (available = what the user can spend)
--   none          the request costs nothing at that level: nothing to hold
--   byok          p_byok and the owner has active provider keys: routes (and so the hold) depend
--                 on those keys, which only the caller can decrypt; nothing held, and own_keys
--                 lists the key to use per provider (the default one, else the newest active one)
--                 as [{"id", "provider", "encrypted_key" (base64)}]
--   unknown_level the level is not in p_holds (inactive): nothing held
-- The usage row template stored with the hold is p_usage completed with the owner, the key, the
-- level and its multiplier, so a hold that expires unsettled still writes a correct row.
CREATE FUNCTION begin_llm_request(p_key_hash text, p_power_level text, p_holds jsonb, p_byok boolean,
                                  p_request_id text, p_ttl interval, p_description text, p_usage jsonb)
RETURNS TABLE (key_id uuid, user_id uuid, power_level text, hold_state text, hold_id uuid, available numeric,
               own_keys jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_own_keys jsonb;
    v_key_id   uuid;
    v_user_id  uuid;
    v_used_at  timestamptz;
    v_level    text;
    v_entry    jsonb;
    v_amount   numeric;
    v_reserved record;
BEGIN
    SELECT k.id, k.user_id, k.last_used_at, coalesce(p_power_level, u.power_level)
      INTO v_key_id, v_user_id, v_used_at, v_level
      FROM gateway_api_keys k JOIN user_credits u ON u.user_id = k.user_id
     WHERE k.key_hash = p_key_hash AND k.is_active AND (k.expires_at IS NULL OR k.expires_at > now());
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_used_at IS NULL OR v_used_at < now() - interval '1 minute' THEN
        UPDATE gateway_api_keys g SET last_used_at = now()
         WHERE g.id = v_key_id AND (g.last_used_at IS NULL OR g.last_used_at < now() - interval '1 minute');
    END IF;

    IF p_byok THEN
        SELECT jsonb_agg(jsonb_build_object('id', d.id, 'provider', d.provider,
                                            'encrypted_key', encode(d.encrypted_key, 'base64')))
          INTO v_own_keys
          FROM (SELECT DISTINCT ON (p.provider) p.id, p.provider, p.encrypted_key
                  FROM user_provider_keys p
                 WHERE p.user_id = v_user_id AND p.is_active
                 ORDER BY p.provider, p.is_default DESC, p.created_at DESC) d;
        IF v_own_keys IS NOT NULL THEN
            RETURN QUERY SELECT v_key_id, v_user_id, v_level, 'byok'::text, NULL::uuid, NULL::numeric, v_own_keys;
            RETURN;
        END IF;
    END IF;
    v_entry := p_holds -> v_level;
    IF v_entry IS NULL THEN
        RETURN QUERY SELECT v_key_id, v_user_id, v_level, 'unknown_level'::text, NULL::uuid, NULL::numeric,
                            NULL::jsonb;
        RETURN;
    END IF;
    v_amount := (v_entry ->> 'credits')::numeric;
    IF v_amount = 0 THEN
        RETURN QUERY SELECT v_key_id, v_user_id, v_level, 'none'::text, NULL::uuid, NULL::numeric, NULL::jsonb;
        RETURN;
    END IF;

    SELECT * INTO v_reserved
      FROM reserve_llm_request(v_user_id, v_amount, p_request_id, p_ttl, p_description,
                               p_usage || jsonb_build_object('user_id', v_user_id, 'gateway_key_id', v_key_id,
                                                             'power_level', v_level,
                                                             'cost_multiplier', v_entry -> 'multiplier',
                                                             'success', false));
    RETURN QUERY SELECT v_key_id, v_user_id, v_level,
                        CASE WHEN v_reserved.success THEN 'held' ELSE 'refused' END,
                        v_reserved.hold_id, v_reserved.available, NULL::jsonb;
END $$;

-- settle_llm_request with a fourth argument: the three-argument settle_llm_request of 0008 (same
-- result, same guarantees: never above the hold, one usage row per request id, the rest of the
-- hold released), and, when the request went out on the user's own provider key p_byok_key_id
-- (NULL: the platform's), counts that key's use. The count is taken only by the call that writes
-- the request's usage row, so a settle retried after a lost connection never counts a use twice.
CREATE FUNCTION settle_llm_request(p_hold_id uuid, p_credits numeric, p_usage jsonb, p_byok_key_id uuid)
RETURNS TABLE (success boolean, new_balance numeric, transaction_id bigint, charged numeric, shortfall numeric,
               available numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v_first boolean := p_byok_key_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM llm_usage_log l WHERE l.request_id = p_usage ->> 'request_id');
BEGIN
    RETURN QUERY SELECT * FROM settle_llm_request(p_hold_id, p_credits, p_usage);
    IF v_first THEN
        UPDATE user_provider_keys SET last_used_at = now(), usage_count_this_month = usage_count_this_month + 1
         WHERE id = p_byok_key_id;
    END IF;
END $$;
