-- Auto top-up: a saved card (Stripe Checkout in setup mode) is charged off-session for a credit
-- package when what is left to spend falls below a threshold.
--
-- Guarantees: at most one top-up of a wallet is in flight (a partial unique index); a top-up is
-- created in the transaction whose write took the wallet below the threshold (a trigger whose WHEN
-- clause costs wallets without auto top-up nothing); each top-up has its own Stripe idempotency
-- key, so a retried API call never charges twice; credits come only from the signed
-- payment_intent.succeeded webhook, under the purchase rules (amount and currency checked); three
-- failures in a row turn auto top-up off, and every failure is told to the owners.
--
-- New project SQLSTATE: LG034 (an auto top-up setting is invalid).

ALTER TABLE user_credits ADD COLUMN auto_top_up_threshold numeric(20, 6)
    CHECK (auto_top_up_threshold IS NULL OR auto_top_up_threshold > 0);
COMMENT ON COLUMN user_credits.auto_top_up_threshold IS
    'Mirror of auto_top_up_settings.threshold while auto top-up is on and can charge; NULL otherwise.';

CREATE TABLE auto_top_up_settings (
    user_id             uuid PRIMARY KEY REFERENCES user_credits (user_id) ON DELETE CASCADE,
    enabled             boolean NOT NULL DEFAULT false,
    threshold           numeric(20, 6) CHECK (threshold > 0),
    package_id          uuid REFERENCES credit_packages (id),
    monthly_limit       numeric(20, 6) CHECK (monthly_limit > 0),  -- credits bought automatically per UTC month
    payment_method_id   text CHECK (payment_method_id ~ '^pm_[A-Za-z0-9_]{1,250}$'),
    stripe_customer_id  text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    next_try_at         timestamptz,
    disabled_reason     text,
    updated_by          uuid,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT enabled OR (threshold IS NOT NULL AND package_id IS NOT NULL AND monthly_limit IS NOT NULL
                           AND payment_method_id IS NOT NULL))
);
CREATE TRIGGER audit_auto_top_up_settings
    AFTER INSERT OR DELETE OR UPDATE OF enabled, threshold, package_id, monthly_limit, payment_method_id
    ON auto_top_up_settings FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('auto_top_up', 'user_id', 'updated_by');

CREATE TABLE auto_top_ups (
    id                bigserial PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES user_credits (user_id) ON DELETE CASCADE,
    package_id        uuid NOT NULL REFERENCES credit_packages (id),
    credits           numeric(20, 6) NOT NULL CHECK (credits > 0),
    amount_cents      bigint NOT NULL CHECK (amount_cents > 0),
    currency          text NOT NULL,
    payment_method_id text NOT NULL,
    stripe_customer_id text NOT NULL,
    idempotency_key   text NOT NULL UNIQUE,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'succeeded', 'failed', 'review')),
    payment_intent_id text UNIQUE,
    failure_code      text,
    failure_message   text,
    spendable_at_start numeric(20, 6),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX auto_top_ups_one_in_flight ON auto_top_ups (user_id) WHERE status IN ('pending', 'processing');
CREATE INDEX auto_top_ups_pending ON auto_top_ups (created_at) WHERE status = 'pending';

-- Starts a top-up of the wallet when it is due: auto top-up on, below the threshold, nothing in
-- flight, not backing off after a failure, and the month's automatic purchases leave room for the
-- package. Called under the wallet's lock (the wallet's own update, or the maintenance pass).
-- Returns the new top-up's id, or NULL.
CREATE FUNCTION ledger_start_auto_top_up(p_user user_credits) RETURNS bigint
LANGUAGE plpgsql AS $$
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
COMMENT ON FUNCTION ledger_start_auto_top_up(user_credits) IS
    'Queues one off-session top-up when due; never a second while one is in flight.';

CREATE FUNCTION ledger_wallet_auto_top_up() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_start_auto_top_up(NEW);
    RETURN NULL;
END $$;
-- Fires only while the wallet is below its auto top-up threshold (the WHEN clause is evaluated in C).
CREATE TRIGGER user_credits_auto_top_up AFTER UPDATE ON user_credits
    FOR EACH ROW
    WHEN (NEW.auto_top_up_threshold IS NOT NULL AND NEW.monthly_allowance IS NOT NULL
          AND NEW.balance + greatest(NEW.monthly_allowance - NEW.credits_used_this_month, 0) < NEW.auto_top_up_threshold)
    EXECUTE FUNCTION ledger_wallet_auto_top_up();

-- A top-up failed (a decline, authentication_required, the payment_intent.payment_failed event, or
-- a card that cannot be charged at all): recorded once, the owners told, the next try backed off
-- (1 hour, then 6), and auto top-up turned off at the third failure in a row. Returns the
-- failures in a row, or NULL when the top-up was already settled.
CREATE FUNCTION ledger_auto_top_up_failed(p_id bigint, p_code text, p_message text, p_payment_intent text)
RETURNS integer
LANGUAGE plpgsql AS $$
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

-- A top-up's PaymentIntent succeeded (the signed webhook): credited once under the purchase rules,
-- or kept for review when Stripe took another amount, currency or customer. Returns the outcome.
CREATE FUNCTION ledger_auto_top_up_paid(p_id bigint, p_payment_intent text, p_amount_cents bigint, p_currency text,
                                        p_customer text, p_charge text)
RETURNS text
LANGUAGE plpgsql AS $$
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

-- Due retries (a failure's back-off has ended and the wallet is still below): the maintenance pass
-- starts them. Returns how many top-ups it started.
CREATE FUNCTION retry_auto_top_ups() RETURNS integer
LANGUAGE plpgsql AS $$
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
