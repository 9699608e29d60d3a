-- Telling people: an outbox of events, signed outgoing webhooks, and emails to a workspace's
-- owners and billing contacts.
--
-- Every event is written by the transaction that caused it (a settle's usage row, a refusal, a
-- purchase, a refund, a budget threshold crossed, the balance falling below its threshold), by
-- triggers on the rows that cause them, so no writer can forget one and a rollback leaves none.
-- ledger_emit fans an event out, in that same transaction, to one webhook_messages row per
-- subscribed endpoint, one notification_emails row per recipient and, for money events, one
-- alert_notifications row per verified channel; the delivery workers
-- (ledger/notify/) send them at least once and log every attempt in webhook_deliveries. An event
-- nobody receives is not stored.
--
-- New project SQLSTATE: LG033 (a webhook's definition is invalid).

-- ---------------------------------------------------------------------------------------------
-- The event types, in one place: what a webhook may subscribe to.
CREATE FUNCTION ledger_event_types() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY['request.completed', 'request.failed', 'rate_limit.hit', 'budget.threshold',
                 'budget.exceeded', 'alert.triggered', 'provider.down', 'provider.up', 'balance.low',
                 'credits.purchased', 'credits.refunded', 'credits.expiring', 'auto_top_up.succeeded',
                 'auto_top_up.failed', 'webhook.disabled', 'webhook.test']
$$;
COMMENT ON FUNCTION ledger_event_types() IS
    'Every event type. A webhook subscribed to ''*'' gets each of them but request.completed, which is sent only when named.';

-- Seed 004 webhooks. The signing secret is stored encrypted (LEDGER_ENCRYPTION_KEY, bound to the
-- webhook's id); after a rotation the previous secret also signs until previous_secret_expires_at.
CREATE TABLE webhooks (
    id                         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id               uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                       text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]'),
    description                text CHECK (length(description) <= 1000),
    url                        text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
    secret_encrypted           bytea NOT NULL,
    previous_secret_encrypted  bytea,
    previous_secret_expires_at timestamptz,
    events                     text[] NOT NULL CHECK (cardinality(events) >= 1
                                                      AND events <@ (ledger_event_types() || '*'::text)),
    filter_project_ids         uuid[],
    timeout_ms                 integer NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 1000 AND 30000),
    is_active                  boolean NOT NULL DEFAULT true,
    last_triggered_at          timestamptz,
    consecutive_failures       integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    failing_since              timestamptz,
    last_failure_at            timestamptz,
    last_failure_reason        text,
    disabled_at                timestamptz,
    disabled_reason            text,
    created_by                 uuid,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_of_workspace ON webhooks (workspace_id, id);
COMMENT ON TABLE webhooks IS 'Seed 004 webhooks: signed (Standard Webhooks) endpoints of a workspace.';

-- Seed 004 notification settings: the balance threshold (what is left to spend, allowance
-- included, below which balance.low is sent once per crossing) and billing contacts (members who
-- get the money emails beside the owners).
ALTER TABLE user_credits ADD COLUMN low_balance_threshold numeric(20, 6)
    CHECK (low_balance_threshold IS NULL OR low_balance_threshold > 0);
ALTER TABLE workspace_members ADD COLUMN billing_contact boolean NOT NULL DEFAULT false;

-- The outbox: one row per event someone receives.
CREATE TABLE notification_events (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL,
    event_type   text NOT NULL,
    data         jsonb NOT NULL,
    dedup_key    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, dedup_key)
);
CREATE INDEX notification_events_by_time ON notification_events (workspace_id, created_at);

-- One row per (event, endpoint): the delivery's state. The worker claims a due row by moving its
-- next_attempt_at past the attempt's timeout (a lease), so a process killed mid-attempt leaves the
-- row to be tried again when the lease ends: at least once, never lost.
CREATE TABLE webhook_messages (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL REFERENCES notification_events (id) ON DELETE CASCADE,
    webhook_id      uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    workspace_id    uuid NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    replays         integer NOT NULL DEFAULT 0,  -- sent again by hand (at most 5)
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, webhook_id)
);
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_messages_of_webhook ON webhook_messages (webhook_id, id);

-- Seed 004 webhook_deliveries: every attempt, as sent and as answered.
CREATE TABLE webhook_deliveries (
    id               bigserial PRIMARY KEY,
    workspace_id     uuid NOT NULL,
    webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    message_id       bigint NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    event_id         uuid NOT NULL,
    event_type       text NOT NULL,
    attempt_number   integer NOT NULL,
    request_headers  jsonb NOT NULL,
    request_body     text NOT NULL,
    response_status  integer,
    response_headers jsonb,
    response_body    text,
    latency_ms       integer,
    success          boolean NOT NULL,
    error_message    text,
    next_retry_at    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_of_webhook ON webhook_deliveries (webhook_id, id);

-- Emails owed to people for an event (low balance, budgets, a disabled endpoint).
CREATE TABLE notification_emails (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL REFERENCES notification_events (id) ON DELETE CASCADE,
    workspace_id    uuid NOT NULL,
    to_email        text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, to_email)
);
CREATE INDEX notification_emails_due ON notification_emails (next_attempt_at) WHERE status = 'pending';

-- Seed 004 notification channels: where alerts and money events go (migration 0025 adds the
-- rules and events). A channel's target (an email address, a Slack, Discord or Teams webhook URL,
-- a PagerDuty routing key, a webhook URL and its signing secret) is stored encrypted: chat webhook
-- URLs are secrets. A channel is used only once verified: the code in its test message was entered
-- back.
CREATE TABLE notification_channels (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id        uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]'),
    type                text NOT NULL CHECK (type IN ('email', 'slack', 'discord', 'teams', 'webhook', 'pagerduty')),
    config_encrypted    bytea NOT NULL,
    target_hint         text NOT NULL,
    is_verified         boolean NOT NULL DEFAULT false,
    verified_at         timestamptz,
    verification_code_encrypted bytea,  -- the code of its test message, encrypted like the target
    verification_expires_at timestamptz,
    verification_failures integer NOT NULL DEFAULT 0,  -- wrong codes entered; the 5th spends the code
    is_active           boolean NOT NULL DEFAULT true,
    last_sent_at        timestamptz,
    failure_count       integer NOT NULL DEFAULT 0,
    last_failure_at     timestamptz,
    last_failure_reason text,
    created_by          uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_channels_of_workspace ON notification_channels (workspace_id, id);
CREATE TRIGGER audit_notification_channels
    AFTER INSERT OR DELETE OR UPDATE OF name, is_active, is_verified, config_encrypted ON notification_channels
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('notification_channel', 'workspace_id', 'created_by');

-- What a channel is owed: an alert's opening or resolution, a money event (the ones emailed to the
-- owners: low balance, budgets, auto top-up failures, expiring credits, a disabled webhook), or its
-- verification (test) message.
CREATE TABLE alert_notifications (
    id              bigserial PRIMARY KEY,
    workspace_id    uuid NOT NULL,
    channel_id      uuid NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    alert_event_id  uuid,  -- its foreign key to alert_events is added by 0025, which makes that table
    event_id        uuid REFERENCES notification_events (id) ON DELETE CASCADE,  -- for 'event'
    action          text NOT NULL CHECK (action IN ('trigger', 'resolve', 'verify', 'event')),
    verification_code_encrypted bytea,  -- only for 'verify' (encrypted like the target), cleared once sent
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_notifications_due ON alert_notifications (next_attempt_at) WHERE status = 'pending';

-- ---------------------------------------------------------------------------------------------
-- Who is emailed about a workspace's money: its owners and billing contacts, else (a wallet made
-- by the operator, with no members) the wallet's own email.
CREATE FUNCTION ledger_money_contacts(p_workspace uuid) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    WITH members AS (
        SELECT DISTINCT lower(u.email) AS email
        FROM workspace_members m JOIN users u ON u.id = m.user_id
        WHERE m.workspace_id = p_workspace AND (m.role = 'OWNER' OR m.billing_contact))
    SELECT email FROM members
    UNION ALL
    SELECT lower(c.email) FROM user_credits c
    WHERE c.user_id = p_workspace AND c.email IS NOT NULL AND NOT EXISTS (SELECT 1 FROM members)
$$;

-- The event types emailed to the money contacts.
CREATE FUNCTION ledger_emailed_event_types() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY['balance.low', 'budget.threshold', 'budget.exceeded', 'webhook.disabled',
                 'auto_top_up.failed', 'credits.expiring']
$$;

-- Writes an event and fans it out, in the caller's transaction: one webhook_messages row per
-- active endpoint of the workspace subscribed to it (by name, or by '*' for every type but
-- request.completed; an endpoint filtering projects gets only events of those projects) and, for
-- the emailed types, one notification_emails row per money contact and one alert_notifications
-- row per verified channel. Guarantees: an event nobody
-- receives is not stored and returns NULL; a second event with the same dedup key in the same
-- workspace is dropped (returns NULL), so a crossing is told once however often it is seen.
CREATE FUNCTION ledger_emit(p_workspace uuid, p_type text, p_data jsonb, p_dedup text DEFAULT NULL,
                            p_only_webhook uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql AS $$
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
COMMENT ON FUNCTION ledger_emit(uuid, text, jsonb, text, uuid) IS
    'Writes an event and its deliveries in the caller''s transaction; NULL when nobody receives it or its dedup key was seen.';

-- ---------------------------------------------------------------------------------------------
-- Events of a usage row: request.completed or request.failed for a request that reached a provider
-- (or failed before it), rate_limit.hit (once per limit per minute) and budget.exceeded (once per
-- budget per period) for a refusal.
CREATE FUNCTION ledger_usage_events() RETURNS trigger
LANGUAGE plpgsql AS $$
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
CREATE TRIGGER llm_usage_log_events AFTER INSERT ON llm_usage_log
    FOR EACH ROW EXECUTE FUNCTION ledger_usage_events();

-- budget.threshold for each threshold crossed (budget_alerts holds one row per threshold per
-- period), and budget.exceeded when a soft budget's spend reaches its amount.
CREATE FUNCTION ledger_budget_alert_events() RETURNS trigger
LANGUAGE plpgsql AS $$
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
CREATE TRIGGER budget_alerts_events AFTER INSERT ON budget_alerts
    FOR EACH ROW EXECUTE FUNCTION ledger_budget_alert_events();

-- credits.purchased and credits.refunded, from the transaction row itself (usage rows never reach
-- the function: the WHEN clause filters them in C).
CREATE FUNCTION ledger_credit_events() RETURNS trigger
LANGUAGE plpgsql AS $$
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
CREATE TRIGGER credit_transactions_events AFTER INSERT ON credit_transactions
    FOR EACH ROW WHEN (NEW.transaction_type IN ('purchase', 'refund'))
    EXECUTE FUNCTION ledger_credit_events();

-- balance.low once per crossing: when what is left to spend (balance and the allowance left; a
-- hold is not spending) goes from at or above the threshold to below it. The WHEN clause is
-- evaluated in C on every wallet update, so wallets without a threshold pay nothing more.
CREATE FUNCTION ledger_balance_low_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_emit(NEW.user_id, 'balance.low',
                        jsonb_build_object('spendable', ledger_spendable(NEW)::text,
                                           'balance', NEW.balance::text,
                                           'threshold', NEW.low_balance_threshold::text));
    RETURN NULL;
END $$;
CREATE TRIGGER user_credits_balance_low AFTER UPDATE ON user_credits
    FOR EACH ROW
    WHEN (NEW.low_balance_threshold IS NOT NULL AND NEW.monthly_allowance IS NOT NULL
          AND NEW.balance + greatest(NEW.monthly_allowance - NEW.credits_used_this_month, 0) < NEW.low_balance_threshold
          AND (OLD.monthly_allowance IS NULL
               OR OLD.balance + greatest(OLD.monthly_allowance - OLD.credits_used_this_month, 0)
                  >= NEW.low_balance_threshold))
    EXECUTE FUNCTION ledger_balance_low_event();

-- ---------------------------------------------------------------------------------------------
-- The audit log never copies a secret column: the webhooks' secrets, the channels' targets and
-- their verification codes join the list (same function as 0019's otherwise).
CREATE OR REPLACE FUNCTION ledger_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
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

-- A webhook's definition and its secret's rotation are audited; its delivery counters are not.
CREATE TRIGGER audit_webhooks
    AFTER INSERT OR DELETE OR UPDATE OF name, description, url, events, filter_project_ids, timeout_ms,
        is_active, disabled_at, secret_encrypted
    ON webhooks FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('webhook', 'workspace_id', 'created_by');
CREATE TRIGGER audit_user_credits_notifications AFTER UPDATE OF low_balance_threshold ON user_credits
    FOR EACH ROW WHEN (OLD.low_balance_threshold IS DISTINCT FROM NEW.low_balance_threshold)
    EXECUTE FUNCTION ledger_audit_change('wallet', 'user_id', '-');

-- ---------------------------------------------------------------------------------------------
-- The outcome of one delivery attempt, in one transaction: the attempt's log row; the message
-- delivered, or due again at p_next_at, or failed for good when p_next_at is NULL; the endpoint's
-- streak of failures, and the endpoint disabled once it has failed p_disable_after times in a row
-- over at least p_disable_after_secs (its owners are told by webhook.disabled, by email).
-- Guarantees: a message already settled by another attempt (a lease that ran out while its
-- attempt was still running) is not moved back; the log row is written whatever happens.
CREATE FUNCTION ledger_webhook_attempt(p_message bigint, p_attempt integer, p_headers jsonb, p_body text,
                                       p_status integer, p_response_headers jsonb, p_response_body text,
                                       p_latency_ms integer, p_success boolean, p_error text,
                                       p_next_at timestamptz, p_disable_after integer,
                                       p_disable_after_secs double precision)
RETURNS text
LANGUAGE plpgsql AS $$
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
COMMENT ON FUNCTION ledger_webhook_attempt(bigint, integer, jsonb, text, integer, jsonb, text, integer, boolean, text,
                                           timestamptz, integer, double precision) IS
    'Logs one delivery attempt and moves its message and endpoint on, atomically; disables an endpoint that keeps failing.';
