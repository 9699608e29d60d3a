-- Every token type priced and counted, and the catalog synced from genai-prices.
--
-- model_prices gains a price per token type, USD per 1M tokens. NULL means the type is priced as
-- its parent, the way genai-prices prices it:
--   cache_read, cache_write, input_audio, input_image   -> input
--   cache_write_1h                                      -> cache_write (-> input)
--   cache_audio_read                                    -> cache_read and input_audio (-> input)
--   cache_image_read                                    -> cache_read and input_image (-> input)
--   reasoning, output_audio, output_image               -> output
-- `tiers` holds threshold prices: {"input": [{"above": 200000, "usd_per_mtok": "6"}], ...}, keyed by
-- the type's name (input, output, cache_read, ...). When a request's input tokens (all of them,
-- cached included) are above a tier's start, every token of that type is priced at the tier's
-- price (the "cliff" providers use).
--
-- synced_prices is what the last catalog sync wrote (the price columns and tiers, as JSON), and
-- synced_from the catalog it came from (e.g. 'genai-prices 0.2.3'). A row whose prices no longer
-- equal synced_prices was changed by an operator, and a sync leaves it alone unless forced; a
-- row with no synced_prices (the seed's, an operator's) is never the catalog's to change.
-- Whether p_tiers is a valid tiers value (see above): an object whose keys are token types and
-- whose values are arrays of {"above": a whole number >= 0, "usd_per_mtok": a number >= 0}.
CREATE FUNCTION ledger_valid_tiers(p_tiers jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
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
$$;

ALTER TABLE model_prices
    ADD COLUMN cache_read_usd_per_mtok       numeric(12,6) CHECK (cache_read_usd_per_mtok >= 0),
    ADD COLUMN cache_write_usd_per_mtok      numeric(12,6) CHECK (cache_write_usd_per_mtok >= 0),
    ADD COLUMN cache_write_1h_usd_per_mtok   numeric(12,6) CHECK (cache_write_1h_usd_per_mtok >= 0),
    ADD COLUMN input_audio_usd_per_mtok      numeric(12,6) CHECK (input_audio_usd_per_mtok >= 0),
    ADD COLUMN cache_audio_read_usd_per_mtok numeric(12,6) CHECK (cache_audio_read_usd_per_mtok >= 0),
    ADD COLUMN input_image_usd_per_mtok      numeric(12,6) CHECK (input_image_usd_per_mtok >= 0),
    ADD COLUMN cache_image_read_usd_per_mtok numeric(12,6) CHECK (cache_image_read_usd_per_mtok >= 0),
    ADD COLUMN reasoning_usd_per_mtok        numeric(12,6) CHECK (reasoning_usd_per_mtok >= 0),
    ADD COLUMN output_audio_usd_per_mtok     numeric(12,6) CHECK (output_audio_usd_per_mtok >= 0),
    ADD COLUMN output_image_usd_per_mtok     numeric(12,6) CHECK (output_image_usd_per_mtok >= 0),
    ADD COLUMN tiers jsonb NOT NULL DEFAULT '{}' CHECK (ledger_valid_tiers(tiers)),
    ADD COLUMN synced_prices jsonb,
    ADD COLUMN synced_from text;

-- The usage row records each count. prompt_tokens is every input token (cached, cache-written,
-- audio and image ones included) and completion_tokens every output token (reasoning, audio and
-- image ones included), so each detail is part of its total: cache_write_1h_tokens is part of
-- cache_write_tokens, cache_audio_read_tokens of both cache_read_tokens and input_audio_tokens.
-- `api` is the API the request came in by (chat, responses, embeddings, completions, messages).
ALTER TABLE llm_usage_log
    ADD COLUMN api text,
    ADD COLUMN cache_read_tokens       bigint NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    ADD COLUMN cache_write_tokens      bigint NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
    ADD COLUMN cache_write_1h_tokens   bigint NOT NULL DEFAULT 0 CHECK (cache_write_1h_tokens >= 0),
    ADD COLUMN input_audio_tokens      bigint NOT NULL DEFAULT 0 CHECK (input_audio_tokens >= 0),
    ADD COLUMN cache_audio_read_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_audio_read_tokens >= 0),
    ADD COLUMN input_image_tokens      bigint NOT NULL DEFAULT 0 CHECK (input_image_tokens >= 0),
    ADD COLUMN cache_image_read_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_image_read_tokens >= 0),
    ADD COLUMN reasoning_tokens        bigint NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0),
    ADD COLUMN output_audio_tokens     bigint NOT NULL DEFAULT 0 CHECK (output_audio_tokens >= 0),
    ADD COLUMN output_image_tokens     bigint NOT NULL DEFAULT 0 CHECK (output_image_tokens >= 0);

-- The usage row described by p_usage, written once per request id. Same as 0008's, plus the API
-- and each token type's count (absent: 0).
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
         status_code, error_message, is_byok, hold_id, transaction_id, usage_anomaly, reported_usage,
         api, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, input_audio_tokens,
         cache_audio_read_tokens, input_image_tokens, cache_image_read_tokens, reasoning_tokens,
         output_audio_tokens, output_image_tokens)
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
         coalesce(v_row.output_audio_tokens, 0), coalesce(v_row.output_image_tokens, 0))
    ON CONFLICT (request_id) DO NOTHING;
END $$;
