-- Alert rules and alert events (seed 004), told to the notification channels of 0022.
--
-- A rule watches one condition of the workspace's own tables over a window: error_rate (percent of
-- requests failed), spend_rate (credits settled), latency_threshold (95th percentile ms),
-- rate_limit_proximity (the fewest requests a rate limit had left), provider_down (percent of a
-- provider's requests that failed upstream) and budget_threshold (percent of a budget used). The
-- maintenance pass evaluates them (evaluate_alert_rules); a budget threshold is also opened on the
-- settle path, by the budget_alerts row the settle writes. An alert event opens once per rule (a
-- partial unique index), respects the rule's cooldown, can be acknowledged, and is resolved when the
-- condition clears; each opening and resolution is queued to the rule's verified channels
-- (alert_notifications) in the same transaction, and told as alert.triggered (and provider.down /
-- provider.up) to webhooks.
--

CREATE TABLE alert_rules (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id      uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name              text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]'),
    description       text CHECK (length(description) <= 1000),
    condition_type    text NOT NULL CHECK (condition_type IN ('budget_threshold', 'rate_limit_proximity', 'error_rate',
                                                              'spend_rate', 'latency_threshold', 'provider_down')),
    threshold         numeric(20, 6) NOT NULL CHECK (threshold >= 0),
    window_seconds    integer NOT NULL DEFAULT 300 CHECK (window_seconds BETWEEN 60 AND 2592000),
    min_requests      integer NOT NULL DEFAULT 5 CHECK (min_requests BETWEEN 1 AND 1000000),
    condition_config  jsonb NOT NULL DEFAULT '{}',
    severity          text NOT NULL DEFAULT 'warning' CHECK (severity IN ('critical', 'error', 'warning', 'info')),
    cooldown_secs     integer NOT NULL DEFAULT 900 CHECK (cooldown_secs BETWEEN 0 AND 604800),
    channel_ids       uuid[] NOT NULL DEFAULT '{}',
    is_active         boolean NOT NULL DEFAULT true,
    last_triggered_at timestamptz,
    triggered_count   integer NOT NULL DEFAULT 0,
    last_value        numeric,
    last_evaluated_at timestamptz,
    created_by        uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_of_workspace ON alert_rules (workspace_id, id);
CREATE TRIGGER audit_alert_rules
    AFTER INSERT OR DELETE OR UPDATE OF name, description, condition_type, threshold, window_seconds, min_requests,
        condition_config, severity, cooldown_secs, channel_ids, is_active
    ON alert_rules FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('alert_rule', 'workspace_id', 'created_by');

CREATE TABLE alert_events (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id         uuid NOT NULL,
    rule_id              uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    trigger_value        numeric,
    threshold_value      numeric,
    message              text NOT NULL,
    severity             text NOT NULL,
    notifications_sent   integer NOT NULL DEFAULT 0,
    notifications_failed integer NOT NULL DEFAULT 0,
    triggered_at         timestamptz NOT NULL DEFAULT now(),
    acknowledged_at      timestamptz,
    acknowledged_by      uuid,
    resolved_at          timestamptz,
    resolved_by          uuid,
    resolution_note      text
);
CREATE UNIQUE INDEX alert_events_one_open ON alert_events (rule_id) WHERE resolved_at IS NULL;
ALTER TABLE alert_notifications ADD FOREIGN KEY (alert_event_id) REFERENCES alert_events (id) ON DELETE CASCADE;
CREATE INDEX alert_events_of_workspace ON alert_events (workspace_id, triggered_at DESC);
CREATE TRIGGER audit_alert_events AFTER UPDATE OF acknowledged_at, resolved_at ON alert_events
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('alert_event', 'workspace_id', 'acknowledged_by');

-- The value a rule watches, now: NULL when there is too little to judge (fewer requests than
-- min_requests in the window, an unknown budget).
CREATE FUNCTION ledger_alert_value(p_rule alert_rules) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
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

-- Whether a value breaks its rule: at or above the threshold, but for rate_limit_proximity (at or
-- below: few requests left).
CREATE FUNCTION ledger_alert_breaks(p_rule alert_rules, p_value numeric) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_value IS NOT NULL AND CASE WHEN p_rule.condition_type = 'rate_limit_proximity'
                                        THEN p_value <= p_rule.threshold ELSE p_value >= p_rule.threshold END
$$;

-- Queues one message per verified, active channel of the rule.
CREATE FUNCTION ledger_queue_alert(p_rule alert_rules, p_event uuid, p_action text) RETURNS integer
LANGUAGE plpgsql AS $$
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

-- Opens the rule's alert event for p_value unless one is open or the cooldown since the last has
-- not passed; tells the channels and the webhooks. Returns the event's id, or NULL.
CREATE FUNCTION ledger_open_alert(p_rule alert_rules, p_value numeric) RETURNS uuid
LANGUAGE plpgsql AS $$
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

-- Resolves an open alert event (p_by NULL: the condition cleared) and tells its channels.
CREATE FUNCTION ledger_resolve_alert(p_event uuid, p_by uuid, p_note text) RETURNS boolean
LANGUAGE plpgsql AS $$
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

-- The maintenance pass: every active rule's value now; an alert opens when it breaks, and an open
-- one resolves when it no longer does (a value that cannot be judged resolves nothing). Returns
-- (opened, resolved).
CREATE FUNCTION evaluate_alert_rules(OUT opened integer, OUT resolved integer)
LANGUAGE plpgsql AS $$
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

-- The settle path's share: a budget threshold crossed (its budget_alerts row) opens the workspace's
-- budget_threshold rules it breaks, at once rather than at the next maintenance pass.
CREATE FUNCTION ledger_budget_alert_rules() RETURNS trigger
LANGUAGE plpgsql AS $$
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
CREATE TRIGGER budget_alerts_rules AFTER INSERT ON budget_alerts
    FOR EACH ROW EXECUTE FUNCTION ledger_budget_alert_rules();

-- The outcome of sending one channel message: sent (the channel's failures reset, the event's
-- sent count up, a test's code forgotten), or due again at p_next_at, or failed for good when that
-- is NULL (the channel's failure count and the event's failed count up).
CREATE FUNCTION ledger_alert_notification_done(p_id bigint, p_success boolean, p_error text, p_next_at timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
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
