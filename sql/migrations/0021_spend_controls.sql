-- Spend controls enforced at the hold: budgets, rate limits and key restrictions.
--
-- Every control is checked inside the metered request's first SQL call (begin_llm_request), under
-- the wallet's row lock that the hold takes anyway, so any number of processes and machines on
-- one database see one exact state: a hold that would take a hard budget past its amount, or a
-- request beyond a rate limit, is refused before anything is held or sent upstream.
--
-- What a hold counted against is kept on the hold (credit_holds.controls), and whatever closes the
-- hold (settle, release, expiry, a late settle after expiry) gives it back through one trigger, so
-- no path that resolves a hold can forget a budget or a concurrency slot.
--
-- Spend is counted in the period in which a request settles (its usage row's created_at): a
-- period's `spent` is the sum of the credits_used of the usage rows on the budget's path written
-- in that period. Open holds carry across a period's end; they are in `held`, not in `spent`.
--
-- New project SQLSTATEs: LG032 (a control's definition is invalid).

-- ---------------------------------------------------------------------------------------------
-- Key restrictions (seed 004 api_keys): NULL means no restriction.
ALTER TABLE gateway_api_keys
    ADD COLUMN allowed_models text[],     -- patterns: '*' matches any run of characters
    ADD COLUMN allowed_providers text[],
    ADD COLUMN allowed_ips cidr[];

DROP TRIGGER audit_gateway_api_keys ON gateway_api_keys;
CREATE TRIGGER audit_gateway_api_keys
    AFTER INSERT OR UPDATE OF name, is_active, expires_at, revoked_at, project_id, allowed_models, allowed_providers,
                              allowed_ips OR DELETE ON gateway_api_keys
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('api_key', 'user_id', 'created_by');

-- Whether p_model matches the pattern p_pattern ('*': any run of characters; nothing else is
-- special, so a model's own '%' or '_' is matched literally).
CREATE FUNCTION ledger_model_matches(p_model text, p_pattern text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_model LIKE replace(replace(replace(replace(p_pattern, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%')
$$;

-- ---------------------------------------------------------------------------------------------
-- Named rate-limit presets (seed 001's rate_limit_tier); a rate limit may point at one instead of
-- giving its own numbers, and then follows the preset when the operator changes it.
CREATE TABLE rate_limit_presets (
    name              text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
    strategy          text NOT NULL DEFAULT 'sliding_window'
                      CHECK (strategy IN ('sliding_window', 'fixed_window', 'token_bucket', 'leaky_bucket')),
    requests          integer CHECK (requests BETWEEN 1 AND 10000),
    window_seconds    integer CHECK (window_seconds BETWEEN 1 AND 86400),
    tokens_per_minute bigint CHECK (tokens_per_minute BETWEEN 1 AND 1000000000),
    max_concurrent    integer CHECK (max_concurrent BETWEEN 1 AND 100000),
    description       text,
    CHECK ((requests IS NULL) = (window_seconds IS NULL)),
    CHECK (coalesce(requests, tokens_per_minute, max_concurrent) IS NOT NULL)
);
INSERT INTO rate_limit_presets (name, requests, window_seconds, tokens_per_minute, max_concurrent, description) VALUES
    ('free', 20, 60, 40000, 2, 'Trial keys: 20 requests and 40,000 tokens a minute, 2 at a time'),
    ('standard', 60, 60, 200000, 10, '60 requests and 200,000 tokens a minute, 10 at a time'),
    ('pro', 600, 60, 2000000, 50, '600 requests and 2,000,000 tokens a minute, 50 at a time'),
    ('enterprise', 6000, 60, 20000000, 200, '6,000 requests and 20,000,000 tokens a minute, 200 at a time');
CREATE TRIGGER audit_rate_limit_presets AFTER INSERT OR UPDATE OR DELETE ON rate_limit_presets
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('rate_limit_preset', '-', '-');

-- ---------------------------------------------------------------------------------------------
-- Budgets (seed 002 budgets, seed 004 budgets). scope_id names the scope: the workspace, project,
-- key or member (person) id, or the end user's own id as the request names it.
CREATE TABLE budgets (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    scope_type       text NOT NULL CHECK (scope_type IN ('workspace', 'project', 'member', 'key', 'end_user')),
    scope_id         text NOT NULL CHECK (length(scope_id) BETWEEN 1 AND 256),
    model_pattern    text CHECK (length(model_pattern) BETWEEN 1 AND 200),
    amount           numeric(20, 6) NOT NULL CHECK (amount > 0),
    period           text NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly', 'yearly', 'lifetime')),
    hard             boolean NOT NULL DEFAULT true,
    alert_thresholds integer[] NOT NULL DEFAULT '{50,80,100}'
                     CHECK (cardinality(alert_thresholds) <= 10 AND 0 < ALL (alert_thresholds)
                            AND 1000 >= ALL (alert_thresholds)),
    created_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- the current period (set on insert; lifetime: since creation), what requests settled in it
    -- charged, what open holds on its path hold now, and which thresholds it has alerted
    period_start     timestamptz NOT NULL DEFAULT now(),
    spent            numeric(20, 6) NOT NULL DEFAULT 0,
    held             numeric(20, 6) NOT NULL DEFAULT 0 CHECK (held >= 0),
    alerted          integer[] NOT NULL DEFAULT '{}'
);
CREATE INDEX budgets_of_workspace ON budgets (workspace_id);
COMMENT ON TABLE budgets IS
    'Spend caps on a scope of a workspace; spent + held is checked against amount at every hold (hard: refused beyond it).';

-- Only the definition is audited: spent, held and alerted move with every request.
CREATE TRIGGER audit_budgets
    AFTER INSERT OR UPDATE OF amount, hard, alert_thresholds, scope_type, scope_id, model_pattern, period OR DELETE
    ON budgets FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('budget', 'workspace_id', '-');

-- Each closed period of a budget (seed 004 budget_history): written when the period is found
-- to have ended (the next hold or settle on it, or the maintenance pass), one row per period.
CREATE TABLE budget_history (
    id           bigserial PRIMARY KEY,
    budget_id    uuid NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
    workspace_id uuid NOT NULL,
    period       text NOT NULL,
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    amount       numeric(20, 6) NOT NULL,
    spent        numeric(20, 6) NOT NULL,
    hard         boolean NOT NULL,
    closed_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (budget_id, period_start)
);

-- A budget's threshold crossed (once per period and threshold): the event the notifications of
-- the next issue deliver. delivered_at is theirs to set.
CREATE TABLE budget_alerts (
    id           bigserial PRIMARY KEY,
    budget_id    uuid NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
    workspace_id uuid NOT NULL,
    threshold    integer NOT NULL,
    period_start timestamptz NOT NULL,
    amount       numeric(20, 6) NOT NULL,
    spent        numeric(20, 6) NOT NULL,
    crossed_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    UNIQUE (budget_id, period_start, threshold)
);
CREATE INDEX budget_alerts_undelivered ON budget_alerts (crossed_at) WHERE delivered_at IS NULL;

-- The start of the UTC calendar period holding p_at ('lifetime': p_since, it never ends).
CREATE FUNCTION ledger_period_start(p_period text, p_at timestamptz, p_since timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_period
        WHEN 'daily' THEN date_trunc('day', p_at, 'UTC')
        WHEN 'weekly' THEN date_trunc('week', p_at, 'UTC')     -- ISO weeks: Monday 00:00 UTC
        WHEN 'monthly' THEN date_trunc('month', p_at, 'UTC')
        WHEN 'yearly' THEN date_trunc('year', p_at, 'UTC')
        ELSE p_since END
$$;

-- The end of the period that starts at p_start (NULL for lifetime).
CREATE FUNCTION ledger_period_end(p_period text, p_start timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((p_start AT TIME ZONE 'UTC') + CASE p_period
        WHEN 'daily' THEN interval '1 day'
        WHEN 'weekly' THEN interval '1 week'
        WHEN 'monthly' THEN interval '1 month'
        WHEN 'yearly' THEN interval '1 year' END) AT TIME ZONE 'UTC'
$$;

CREATE FUNCTION ledger_budget_starts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.period_start := ledger_period_start(NEW.period, now(), now());
    RETURN NEW;
END $$;
CREATE TRIGGER budgets_period_start BEFORE INSERT ON budgets
    FOR EACH ROW EXECUTE FUNCTION ledger_budget_starts();

-- The budget, its period rolled to the one holding now(): a period that has ended leaves its
-- budget_history row and the new one starts with nothing spent and no threshold alerted (open
-- holds stay in `held`: they will settle in the new period). The caller holds the wallet's lock.
CREATE FUNCTION ledger_roll_budget(p_budget budgets) RETURNS budgets
LANGUAGE plpgsql AS $$
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

-- Rolls every budget whose period has ended (the maintenance pass): so a budget no request
-- touched still leaves its history row soon after its period's end. Returns how many rolled.
-- A budget's counters change only under its wallet's lock (the requests' own calls hold it), so
-- this takes it too, and skips a wallet busy now: its next request rolls the budget anyway.
CREATE FUNCTION roll_budget_periods() RETURNS integer
LANGUAGE plpgsql AS $$
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

-- ---------------------------------------------------------------------------------------------
-- Rate limits (seed 004 rate_limits). The state each strategy needs lives on the row, changed
-- only under the wallet's lock by the metered request's own SQL call:
--   fixed_window    window_start, window_count: windows aligned to the epoch, `requests` per window
--   sliding_window  stamps: the admission times in the last window_seconds (at most `requests`)
--   token_bucket    level, level_at: the bucket drains `requests` per window_seconds, continuously,
--                   and holds `requests` (so a burst of up to `requests`, then the steady rate)
--   leaky_bucket    level, level_at: drains the same, and holds 1: requests pass at the steady
--                   rate only, one every window_seconds / requests, never in a burst
--   tokens_per_minute  tokens_level, tokens_at: drains tokens_per_minute a minute, holds
--                   tokens_per_minute; a hold adds the request's token bound, its settle gives
--                   back what was not used, a release gives back all of it
--   max_concurrent  in_flight: requests holding credits, not yet settled or released
CREATE TABLE rate_limits (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id      uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    scope_type        text NOT NULL CHECK (scope_type IN ('workspace', 'project', 'member', 'key', 'end_user')),
    scope_id          text NOT NULL CHECK (length(scope_id) BETWEEN 1 AND 256),
    model_pattern     text CHECK (length(model_pattern) BETWEEN 1 AND 200),
    preset            text REFERENCES rate_limit_presets (name) ON UPDATE CASCADE,
    strategy          text NOT NULL DEFAULT 'sliding_window'
                      CHECK (strategy IN ('sliding_window', 'fixed_window', 'token_bucket', 'leaky_bucket')),
    requests          integer CHECK (requests BETWEEN 1 AND 10000),
    window_seconds    integer CHECK (window_seconds BETWEEN 1 AND 86400),
    tokens_per_minute bigint CHECK (tokens_per_minute BETWEEN 1 AND 1000000000),
    max_concurrent    integer CHECK (max_concurrent BETWEEN 1 AND 100000),
    created_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    window_start      timestamptz,
    window_count      integer NOT NULL DEFAULT 0,
    stamps            timestamptz[] NOT NULL DEFAULT '{}',
    level             numeric NOT NULL DEFAULT 0,
    level_at          timestamptz,
    tokens_level      numeric NOT NULL DEFAULT 0,
    tokens_at         timestamptz,
    in_flight         integer NOT NULL DEFAULT 0 CHECK (in_flight >= 0),
    CHECK ((requests IS NULL) = (window_seconds IS NULL)),
    CHECK (preset IS NOT NULL OR coalesce(requests, tokens_per_minute, max_concurrent) IS NOT NULL)
);
CREATE INDEX rate_limits_of_workspace ON rate_limits (workspace_id);
CREATE TRIGGER audit_rate_limits
    AFTER INSERT OR UPDATE OF scope_type, scope_id, model_pattern, preset, strategy, requests, window_seconds,
                              tokens_per_minute, max_concurrent OR DELETE
    ON rate_limits FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('rate_limit', 'workspace_id', '-');

-- ---------------------------------------------------------------------------------------------
-- Model-access requests (seed 002): a member asks for a model their key does not allow; an owner
-- or admin approves (the pattern joins the key's allowed_models) or denies.
CREATE TABLE model_access_requests (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_id       uuid NOT NULL REFERENCES gateway_api_keys (id) ON DELETE CASCADE,
    requested_by uuid REFERENCES users (id) ON DELETE SET NULL,
    model        text NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
    reason       text CHECK (length(reason) <= 1000),
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied')),
    decided_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    decided_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_access_requests_of_workspace ON model_access_requests (workspace_id, created_at DESC);
CREATE UNIQUE INDEX model_access_requests_one_pending ON model_access_requests (key_id, model) WHERE status = 'pending';
CREATE TRIGGER audit_model_access_requests AFTER INSERT OR UPDATE OF status OR DELETE ON model_access_requests
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('model_access_request', 'workspace_id', 'requested_by');

-- ---------------------------------------------------------------------------------------------
-- What a hold counted against (NULL: nothing): the budgets whose `held` holds its amount, the
-- rate limits where it takes a place in flight, and those where it reserved reserved_tokens.
ALTER TABLE credit_holds
    ADD COLUMN control_budgets uuid[],
    ADD COLUMN control_slots uuid[],
    ADD COLUMN control_tokens uuid[],
    ADD COLUMN reserved_tokens numeric;

-- The usage row of a request: its end user (as the request named it), and, for a request refused
-- by a control, which (seed 004 request_logs.rate_limited, rate_limit_remaining).
ALTER TABLE llm_usage_log
    ADD COLUMN end_user text,
    ADD COLUMN refused_by text CHECK (refused_by IN ('budget', 'rate_limit', 'key_restriction')),
    ADD COLUMN control_id uuid,
    ADD COLUMN rate_limited boolean NOT NULL DEFAULT false,
    ADD COLUMN rate_limit_remaining integer;
CREATE INDEX llm_usage_log_refusals ON llm_usage_log (created_at) WHERE refused_by IS NOT NULL;

-- The usage row described by p_usage, written once per request id. Same as 0013's, plus the end
-- user and the refusal columns.
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

-- Whatever closes a controlled hold gives back what it counted: its amount leaves each budget's
-- `held` (and a settle's charge joins `spent`, in the period the settle falls in, alerting each
-- threshold crossed once per period), its concurrency slots free, and a hold that charged
-- nothing (released, expired) gives back its whole token reservation. A hold that expired and is
-- settled late adds its charge to `spent` then. Budgets and limits deleted meanwhile are skipped.
CREATE FUNCTION ledger_hold_closed() RETURNS trigger
LANGUAGE plpgsql AS $$
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
CREATE TRIGGER credit_holds_controls_closed AFTER UPDATE OF status ON credit_holds
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND (NEW.control_budgets IS NOT NULL OR NEW.control_slots IS NOT NULL
                            OR NEW.control_tokens IS NOT NULL))
    EXECUTE FUNCTION ledger_hold_closed();

-- Why the key does not allow the request (p_facts: model, client_ip, providers), or NULL:
-- {"what": "model" | "provider" | "ip", "message": ...}.
CREATE FUNCTION ledger_key_refusal(p_key gateway_api_keys, p_facts jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
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

-- Whether a budget or limit row applies to a request of key p_key for p_facts' model and end user.
CREATE FUNCTION ledger_control_applies(p_scope_type text, p_scope_id text, p_model_pattern text,
                                       p_key gateway_api_keys, p_facts jsonb) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT (CASE p_scope_type
                WHEN 'workspace' THEN true
                WHEN 'project' THEN p_scope_id = p_key.project_id::text
                WHEN 'member' THEN p_scope_id = p_key.created_by::text
                WHEN 'key' THEN p_scope_id = p_key.id::text
                WHEN 'end_user' THEN p_scope_id = p_facts ->> 'end_user'
                ELSE false END)
       AND (p_model_pattern IS NULL OR ledger_model_matches(p_facts ->> 'model', p_model_pattern))
$$;

-- The human name of a control's scope, for refusals: "project 9b1…", "end user alice".
CREATE FUNCTION ledger_scope_name(p_scope_type text, p_scope_id text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT replace(p_scope_type, '_', ' ') || ' ' || left(p_scope_id, 80)
$$;

-- The rate limit's effective numbers: its own, or its preset's when it names one.
CREATE VIEW rate_limits_effective AS
SELECT r.id, r.workspace_id, r.scope_type, r.scope_id, r.model_pattern, r.preset,
       CASE WHEN r.preset IS NULL THEN r.strategy ELSE p.strategy END AS strategy,
       CASE WHEN r.preset IS NULL THEN r.requests ELSE p.requests END AS requests,
       CASE WHEN r.preset IS NULL THEN r.window_seconds ELSE p.window_seconds END AS window_seconds,
       CASE WHEN r.preset IS NULL THEN r.tokens_per_minute ELSE p.tokens_per_minute END AS tokens_per_minute,
       CASE WHEN r.preset IS NULL THEN r.max_concurrent ELSE p.max_concurrent END AS max_concurrent,
       r.window_start, r.window_count, r.stamps, r.level, r.level_at, r.tokens_level, r.tokens_at, r.in_flight,
       r.created_by, r.created_at, r.updated_at
  FROM rate_limits r LEFT JOIN rate_limit_presets p ON p.name = r.preset;

-- The rate limits on the path of a request of key p_key for p_facts' model and end user, with
-- their effective numbers, in id order. Not locked: the wallet's lock, which every writer of a
-- limit's state holds, guards them.
CREATE FUNCTION ledger_limits_on_path(p_key gateway_api_keys, p_facts jsonb) RETURNS SETOF rate_limits_effective
LANGUAGE sql AS $$
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

-- The controls over one request, checked (nothing changed but a budget's period rolled), under
-- the wallet's lock that the caller holds. p_amount: the credits the request holds (0: none);
-- p_facts: model, end_user, tokens (its token bound). Returns
--   {"refusal": null | {"kind": "budget" | "rate_limit", "control_id", "message", "retry_after",
--                       "type", "scope", "period", "resets_at", "remaining"},
--    "requests": null | {"limit", "remaining", "reset_at"}   the tightest request limit, after this request
--    "tokens": null | {"limit", "remaining", "reset_at"}      the tightest token limit
--    "soft": [soft budgets this request takes past their amount]}
-- and what its hold will count (budgets, places in flight, token reservations) and the rate
-- limits on its path, for ledger_take_controls once the wallet has agreed to the hold.
CREATE FUNCTION ledger_check_controls(p_key gateway_api_keys, p_amount numeric, p_facts jsonb,
                                      OUT answer jsonb, OUT budget_ids uuid[], OUT limits rate_limits_effective[],
                                      OUT slot_ids uuid[], OUT token_ids uuid[])
LANGUAGE plpgsql AS $$
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

-- Takes what ledger_check_controls passed: the budgets' `held` grows by p_amount, and each rate
-- limit on the path counts the request (its strategy's state, its token bucket, its place in
-- flight) in one UPDATE of its row. The caller holds the wallet's lock.
CREATE FUNCTION ledger_take_controls(p_amount numeric, p_tokens numeric, p_budget_ids uuid[],
                                     p_limits rate_limits_effective[]) RETURNS void
LANGUAGE plpgsql AS $$
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

-- A request refused by a control: its usage row (failed, nothing charged, which control and, for
-- a rate limit, rate_limited) so that refusals are counted where usage is.
CREATE FUNCTION ledger_log_refusal(p_usage jsonb, p_refused_by text, p_refusal jsonb, p_status integer)
RETURNS void
LANGUAGE plpgsql AS $$
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

-- Holds p_amount for a metered request of key p_key under its controls (the wallet's lock taken
-- here). Returns (hold_state, hold_id, available, controls):
--   held / refused (not enough credits) / none (nothing to hold) as begin_llm_request's, and
--   budget / rate_limit: a control refused; nothing held, the refusal's usage row written.
-- controls: ledger_check_controls' answer (NULL when the workspace has no control at all: two
-- index probes are all such a request pays). The controls are taken only when the hold is new: a
-- begin retried with the same request id finds its hold, already counted.
CREATE FUNCTION ledger_hold_under_controls(p_key gateway_api_keys, p_amount numeric, p_request_id text,
                                           p_ttl interval, p_description text, p_usage jsonb, p_facts jsonb)
RETURNS TABLE (hold_state text, hold_id uuid, available numeric, controls jsonb)
LANGUAGE plpgsql AS $$
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

-- begin_llm_request: as 0012's (authenticate + hold in one call, same hold states), and the
-- key's restrictions and the workspace's controls checked in the same call. p_facts:
-- {"model", "end_user", "client_ip", "tokens" (the request's token bound), "providers"}.
-- New hold states, each with nothing held and the refusal's usage row written:
--   forbidden    the key does not allow the model, the providers or the client's address
--   budget       a hard budget on the request's path would be exceeded
--   rate_limit   a rate limit on the request's path is reached
-- controls: ledger_check_controls' answer (the refusal, the headers' limits), or for forbidden
-- {"refusal": {"what", "message"}}; allowed_providers: the key's, for routing (NULL: any).
DROP FUNCTION begin_llm_request(text, text, jsonb, boolean, text, interval, text, jsonb);
CREATE FUNCTION begin_llm_request(p_key_hash text, p_power_level text, p_holds jsonb, p_byok boolean,
                                  p_request_id text, p_ttl interval, p_description text, p_usage jsonb,
                                  p_facts jsonb)
RETURNS TABLE (key_id uuid, user_id uuid, power_level text, hold_state text, hold_id uuid, available numeric,
               own_keys jsonb, controls jsonb, allowed_providers text[])
LANGUAGE plpgsql AS $$
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

-- reserve_controlled_request: the hold of a request on the user's own provider keys (begin said
-- "byok"; only the service can decrypt the keys, so the routes and the hold come after), under
-- the same controls as begin_llm_request's. Same answer as ledger_hold_under_controls.
CREATE FUNCTION reserve_controlled_request(p_key_id uuid, p_amount numeric, p_request_id text, p_ttl interval,
                                           p_description text, p_usage jsonb, p_facts jsonb)
RETURNS TABLE (hold_state text, hold_id uuid, available numeric, controls jsonb)
LANGUAGE plpgsql AS $$
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

-- settle_llm_request (four arguments): as 0012's, and a hold that reserved tokens under a
-- tokens-per-minute limit gives back what the request did not use (its bound less the prompt and
-- completion tokens charged): the hold's closing trigger (ledger_hold_closed) does it, told the
-- tokens charged through the transaction-local setting ledger.settled_tokens, in the same write
-- of the limit's row that frees its place in flight. Only the call that settles the hold does it.
CREATE OR REPLACE FUNCTION settle_llm_request(p_hold_id uuid, p_credits numeric, p_usage jsonb, p_byok_key_id uuid)
RETURNS TABLE (success boolean, new_balance numeric, transaction_id bigint, charged numeric, shortfall numeric,
               available numeric)
LANGUAGE plpgsql AS $$
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

-- The controls over a key now, for its holder (GET /v1/credits/balance): every budget and rate
-- limit on its path (any model, any end user) with what is left of it, without changing any.
CREATE FUNCTION controls_over_key(p_key_id uuid)
RETURNS TABLE (kind text, id uuid, scope_type text, scope_id text, model_pattern text, period text, hard boolean,
               amount numeric, spent numeric, held numeric, remaining numeric, resets_at timestamptz,
               strategy text, requests integer, window_seconds integer, tokens_per_minute bigint,
               max_concurrent integer, in_flight integer, preset text)
LANGUAGE sql STABLE AS $$
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

-- A budget's or rate limit's scope must name something of its own workspace: the workspace
-- itself, one of its projects, one of its members, one of its keys (an end user is any id the
-- requests name). Refused with LG032, so psql cannot create a control that never applies.
CREATE FUNCTION ledger_check_control_scope() RETURNS trigger
LANGUAGE plpgsql AS $$
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
CREATE TRIGGER budgets_scope BEFORE INSERT OR UPDATE OF scope_type, scope_id, workspace_id ON budgets
    FOR EACH ROW EXECUTE FUNCTION ledger_check_control_scope();
CREATE TRIGGER rate_limits_scope BEFORE INSERT OR UPDATE OF scope_type, scope_id, workspace_id ON rate_limits
    FOR EACH ROW EXECUTE FUNCTION ledger_check_control_scope();

-- Each budget as it stands now: a period that has ended but not yet rolled (no request since)
-- shows as the new one, with nothing spent. remaining: what a hold may still take.
CREATE VIEW budgets_now AS
SELECT b.id, b.workspace_id, b.scope_type, b.scope_id, b.model_pattern, b.amount, b.period, b.hard,
       b.alert_thresholds, b.created_by, b.created_at, b.updated_at,
       c.period_start,
       ledger_period_end(b.period, c.period_start) AS resets_at,
       CASE WHEN c.period_start > b.period_start THEN 0 ELSE b.spent END AS spent,
       b.held,
       greatest(b.amount - b.held - CASE WHEN c.period_start > b.period_start THEN 0 ELSE b.spent END, 0) AS remaining
  FROM budgets b
 CROSS JOIN LATERAL (SELECT ledger_period_start(b.period, now(), b.period_start) AS period_start) c;
