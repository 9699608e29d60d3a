-- Stripe: stored webhook events, the payments they credit, refunds, disputes, subscriptions.
--
-- Every webhook event is stored by its id before it is applied; the credit it causes and its
-- processed mark commit in one transaction, so a retry, a race or a crash neither loses nor
-- doubles a credit.

CREATE TABLE stripe_events (
    id           text PRIMARY KEY,
    type         text NOT NULL,
    payload      jsonb NOT NULL,
    livemode     boolean NOT NULL DEFAULT false,
    -- received: stored, not yet applied; processed: applied; ignored: a type with no effect here;
    -- deferred: its target is not known yet (answered non-2xx so Stripe retries it).
    status       text NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'processed', 'ignored', 'deferred')),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
);
CREATE INDEX idx_stripe_events_open ON stripe_events (received_at) WHERE status IN ('received', 'deferred');

-- One row per paid-for credit package (keyed by its payment intent): what Stripe charged, what
-- it refunded (amount_refunded is cumulative in Stripe; refunded_cents is how much of it has
-- been turned into refund transactions) and the credits that could not be taken back.
CREATE TABLE stripe_payments (
    payment_intent_id   text PRIMARY KEY,
    checkout_session_id text UNIQUE,
    user_id             uuid NOT NULL REFERENCES user_credits (user_id),
    package_id          uuid REFERENCES credit_packages (id),
    credits             numeric(20, 6) NOT NULL CHECK (credits > 0),
    amount_cents        bigint NOT NULL CHECK (amount_cents > 0),
    currency            text NOT NULL,
    charge_id           text,
    status              text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'paid', 'partially_refunded', 'refunded')),
    transaction_id      bigint REFERENCES credit_transactions (id),
    refunded_cents      bigint NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
    credits_refunded    numeric(20, 6) NOT NULL DEFAULT 0 CHECK (credits_refunded >= 0),
    refund_shortfall    numeric(20, 6) NOT NULL DEFAULT 0 CHECK (refund_shortfall >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    paid_at             timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (refunded_cents <= amount_cents)
);
CREATE INDEX idx_stripe_payments_user ON stripe_payments (user_id, created_at DESC);
CREATE INDEX idx_stripe_payments_charge ON stripe_payments (charge_id) WHERE charge_id IS NOT NULL;

CREATE TABLE stripe_disputes (
    dispute_id        text PRIMARY KEY,
    payment_intent_id text NOT NULL REFERENCES stripe_payments (payment_intent_id),
    user_id           uuid NOT NULL REFERENCES user_credits (user_id),
    amount_cents      bigint NOT NULL,
    credits           numeric(20, 6) NOT NULL,
    hold_id           uuid REFERENCES credit_holds (hold_id),
    credits_held      numeric(20, 6) NOT NULL DEFAULT 0,
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost', 'closed')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    closed_at         timestamptz
);

CREATE TABLE stripe_subscriptions (
    subscription_id      text PRIMARY KEY,
    user_id              uuid NOT NULL REFERENCES user_credits (user_id),
    tier                 text NOT NULL REFERENCES subscription_tiers (tier),
    status               text NOT NULL,
    current_period_start timestamptz,
    current_period_end   timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_stripe_subscriptions_user ON stripe_subscriptions (user_id);

-- refund_purchased_credits: takes back up to p_credits of purchased balance for a Stripe refund
-- or a lost dispute, never below zero: what the balance cannot cover (already spent) comes back
-- as shortfall. Writes one refund transaction when anything is taken. Replaying a reference
-- returns the first transaction and takes nothing more.
CREATE FUNCTION refund_purchased_credits(p_user_id uuid, p_credits numeric, p_reference text,
                                         p_description text DEFAULT NULL)
RETURNS TABLE (success boolean, new_balance numeric, transaction_id bigint, refunded numeric, shortfall numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v_user  user_credits;
    v_first credit_transactions;
    v_take  numeric;
    v_debit record;
BEGIN
    PERFORM ledger_require_amount(p_credits);
    IF nullif(btrim(p_reference), '') IS NULL THEN
        RAISE EXCEPTION 'a refund needs its reference' USING ERRCODE = 'LG008';
    END IF;
    v_user := ledger_lock_user(p_user_id);
    SELECT * INTO v_first FROM credit_transactions t
     WHERE t.transaction_type = 'refund' AND t.reference_id = p_reference;
    IF FOUND THEN
        RETURN QUERY SELECT true, v_first.balance_after, v_first.id, -v_first.amount, p_credits + v_first.amount;
        RETURN;
    END IF;
    v_take := least(p_credits, v_user.balance);
    IF v_take = 0 THEN
        RETURN QUERY SELECT true, v_user.balance, NULL::bigint, 0::numeric(20, 6), p_credits;
        RETURN;
    END IF;
    SELECT * INTO v_debit FROM ledger_write_debit(v_user, v_take, 'refund', p_reference, p_description);
    RETURN QUERY SELECT true, v_debit.new_balance, v_debit.transaction_id, v_take, p_credits - v_take;
END $$;

-- hold_disputed_credits: while a dispute is open, up to p_credits of the user's purchased
-- balance (what is not already held) is held so it cannot be spent. The hold never expires; it
-- is released when the dispute closes. Returns the hold (NULL when nothing could be held).
CREATE FUNCTION hold_disputed_credits(p_user_id uuid, p_credits numeric, p_dispute_id text)
RETURNS TABLE (hold_id uuid, held numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v_user   user_credits;
    v_amount numeric;
    v_hold   uuid;
BEGIN
    PERFORM ledger_require_amount(p_credits);
    v_user := ledger_lock_user(p_user_id);
    SELECT h.hold_id INTO v_hold FROM credit_holds h WHERE h.request_id = 'dispute:' || p_dispute_id;
    IF FOUND THEN
        RETURN QUERY SELECT h.hold_id, h.amount FROM credit_holds h WHERE h.hold_id = v_hold;
        RETURN;
    END IF;
    v_amount := least(p_credits, greatest(v_user.balance - v_user.credits_held, 0));
    IF v_amount = 0 THEN
        RETURN QUERY SELECT NULL::uuid, 0::numeric(20, 6);
        RETURN;
    END IF;
    INSERT INTO credit_holds (user_id, request_id, amount, description, expires_at)
    VALUES (p_user_id, 'dispute:' || p_dispute_id, v_amount, 'held while dispute ' || p_dispute_id || ' is open',
            'infinity')
    RETURNING credit_holds.hold_id INTO v_hold;
    UPDATE user_credits SET credits_held = credits_held + v_amount, updated_at = now() WHERE user_id = p_user_id;
    RETURN QUERY SELECT v_hold, v_amount;
END $$;

-- set_user_tier: the user's tier and that tier's monthly allowance; with p_cycle_start, a new
-- billing cycle starts then (credits_used_this_month back to 0), as when a subscription renews.
CREATE FUNCTION set_user_tier(p_user_id uuid, p_tier text, p_cycle_start timestamptz DEFAULT NULL)
RETURNS user_credits
LANGUAGE plpgsql AS $$
DECLARE
    v_allowance numeric := ledger_tier_allowance(p_tier, true);
    v_user      user_credits;
BEGIN
    PERFORM ledger_lock_user(p_user_id);
    UPDATE user_credits
       SET tier = p_tier,
           monthly_allowance = v_allowance,
           billing_cycle_start = coalesce(p_cycle_start, billing_cycle_start),
           credits_used_this_month = CASE WHEN p_cycle_start IS NULL THEN credits_used_this_month ELSE 0 END,
           updated_at = now()
     WHERE user_id = p_user_id
    RETURNING * INTO v_user;
    RETURN v_user;
END $$;
