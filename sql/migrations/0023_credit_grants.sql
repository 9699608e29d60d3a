-- Credit grants that expire, by priority (Stripe's billing credits, OpenRouter's expiring credits).
--
-- A wallet's balance is made of lots: each grant (a bonus, a promotion, an operator's positive
-- adjustment) is a lot of its own, with a priority (0 to 100, lower spent first, as Stripe's) and
-- an optional expiry; what is not in a grant is the purchased part (balance - granted_remaining).
-- Spending draws the monthly allowance, then grants by priority and earliest expiry, then purchased
-- credits; a refund or dispute of a payment takes back purchased credits only (what that payment
-- bought), never a grant. At expiry, what is left of a lot leaves the balance by an `expiry`
-- transaction row of its own. Invariants (CHECKs, and ledger_reconciliation for those across
-- tables): no lot is negative or above its amount, an expired lot is zero, a wallet's open lots
-- sum to its granted_remaining, and granted_remaining is never above the balance.
--
-- Credits granted before this migration stay in the purchased part (they have no lot).

ALTER TABLE user_credits
    ADD COLUMN granted_remaining numeric(20, 6) NOT NULL DEFAULT 0 CHECK (granted_remaining >= 0),
    ADD CONSTRAINT user_credits_grants_within_balance CHECK (granted_remaining <= balance);

ALTER TABLE credit_transactions DROP CONSTRAINT credit_transactions_transaction_type_check;
ALTER TABLE credit_transactions ADD CONSTRAINT credit_transactions_transaction_type_check
    CHECK (transaction_type IN ('purchase', 'usage', 'refund', 'admin_adjustment', 'bonus', 'expiry'));

CREATE TABLE credit_grants (
    id                 bigserial PRIMARY KEY,
    user_id            uuid NOT NULL REFERENCES user_credits (user_id) ON DELETE CASCADE,
    transaction_id     bigint NOT NULL UNIQUE REFERENCES credit_transactions (id),
    kind               text NOT NULL,
    amount             numeric(20, 6) NOT NULL CHECK (amount > 0),
    remaining          numeric(20, 6) NOT NULL CHECK (remaining >= 0),
    priority           integer NOT NULL DEFAULT 50 CHECK (priority BETWEEN 0 AND 100),
    expires_at         timestamptz,
    expired_at         timestamptz,
    expiring_told_at   timestamptz,
    expiry_transaction_id bigint REFERENCES credit_transactions (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (remaining <= amount),
    CHECK (expired_at IS NULL OR remaining = 0)
);
CREATE INDEX credit_grants_open ON credit_grants (user_id, priority, expires_at, id) WHERE remaining > 0;
CREATE INDEX credit_grants_expiring ON credit_grants (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;
COMMENT ON TABLE credit_grants IS
    'Lots of granted credits: spent after the allowance, by priority then earliest expiry, before purchased credits.';

-- Only the ledger functions change granted_remaining, as only they change the balance.
CREATE OR REPLACE FUNCTION ledger_guard_balance() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('ledger.balance_writer', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    IF (TG_OP = 'INSERT' AND (NEW.balance <> 0 OR NEW.granted_remaining <> 0))
       OR (TG_OP = 'UPDATE' AND (NEW.balance IS DISTINCT FROM OLD.balance
                                 OR NEW.granted_remaining IS DISTINCT FROM OLD.granted_remaining)) THEN
        RAISE EXCEPTION 'balances change only through the ledger functions'
            USING ERRCODE = 'LG007',
                  DETAIL = format('user %s: balance %s -> %s', NEW.user_id,
                                  CASE WHEN TG_OP = 'UPDATE' THEN OLD.balance::text ELSE 'none' END, NEW.balance),
                  HINT = 'Use add_user_credits() or debit_user_credits(); they write the credit_transactions row.';
    END IF;
    RETURN NEW;
END $$;

-- Every bonus and positive operator adjustment is a lot (no expiry, priority 50, unless
-- grant_credits gives it terms), written with its transaction so no writer can forget it.
CREATE FUNCTION ledger_grant_lot() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO credit_grants (user_id, transaction_id, kind, amount, remaining)
    VALUES (NEW.user_id, NEW.id, NEW.transaction_type, NEW.amount, NEW.amount);
    PERFORM set_config('ledger.balance_writer', 'on', true);
    UPDATE user_credits SET granted_remaining = granted_remaining + NEW.amount WHERE user_id = NEW.user_id;
    PERFORM set_config('ledger.balance_writer', 'off', true);
    RETURN NULL;
END $$;
CREATE TRIGGER credit_transactions_grant_lot AFTER INSERT ON credit_transactions
    FOR EACH ROW WHEN (NEW.transaction_type IN ('bonus', 'admin_adjustment') AND NEW.amount > 0)
    EXECUTE FUNCTION ledger_grant_lot();

-- A grant with terms: add_user_credits (bonus or admin_adjustment, replay-safe by reference), and
-- the lot it made given its expiry and priority. A replay returns the first grant and changes
-- nothing of it. An expiry must be in the future.
CREATE FUNCTION grant_credits(p_user_id uuid, p_amount numeric, p_transaction_type text, p_reference text,
                              p_expires_at timestamptz, p_priority integer, p_description text DEFAULT NULL)
RETURNS TABLE(success boolean, new_balance numeric, transaction_id bigint, grant_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_added record;
    v_lot   bigint;
    v_first credit_transactions;
BEGIN
    IF p_transaction_type IS NULL OR p_transaction_type NOT IN ('bonus', 'admin_adjustment') THEN
        RAISE EXCEPTION 'a grant is a bonus or an admin_adjustment, not %', coalesce(p_transaction_type, 'NULL')
            USING ERRCODE = 'LG002';
    END IF;
    -- a replay answers as the first call did, whenever it comes (its expiry may have passed since)
    IF p_reference IS NOT NULL THEN
        PERFORM ledger_lock_user(p_user_id);
        v_first := ledger_find_replay(p_user_id, p_amount, p_transaction_type, p_reference, false);
        IF v_first.id IS NOT NULL THEN
            SELECT g.id INTO v_lot FROM credit_grants g WHERE g.transaction_id = v_first.id;
            IF EXISTS (SELECT 1 FROM credit_grants g WHERE g.id = v_lot
                          AND (g.expires_at IS DISTINCT FROM p_expires_at OR g.priority <> coalesce(p_priority, 50))) THEN
                RAISE EXCEPTION 'reference % was already used for a grant with other terms', p_reference
                    USING ERRCODE = 'LG004', HINT = 'One reference is one grant: give this grant a reference of its own.';
            END IF;
            RETURN QUERY SELECT true, v_first.balance_after, v_first.id, v_lot;
            RETURN;
        END IF;
    END IF;
    IF p_priority IS NOT NULL AND p_priority NOT BETWEEN 0 AND 100 THEN
        RAISE EXCEPTION 'a grant''s priority is 0 (spent first) to 100, not %', p_priority
            USING ERRCODE = 'LG009', HINT = 'Leave it out for 50.';
    END IF;
    IF p_expires_at IS NOT NULL AND p_expires_at <= now() THEN
        RAISE EXCEPTION 'a grant''s expiry must be in the future (% is not)', p_expires_at
            USING ERRCODE = 'LG009';
    END IF;
    SELECT * INTO v_added FROM add_user_credits(p_user_id, p_amount, p_transaction_type, p_reference, p_description);
    UPDATE credit_grants g
       SET expires_at = p_expires_at, priority = coalesce(p_priority, 50)
     WHERE g.transaction_id = v_added.transaction_id AND g.created_at = now()  -- made by this call, not a replay
    RETURNING g.id INTO v_lot;
    IF v_lot IS NULL THEN
        SELECT g.id INTO v_lot FROM credit_grants g WHERE g.transaction_id = v_added.transaction_id;
    END IF;
    RETURN QUERY SELECT v_added.success, v_added.new_balance, v_added.transaction_id, v_lot;
END $$;
COMMENT ON FUNCTION grant_credits(uuid, numeric, text, text, timestamptz, integer, text) IS
    'Adds granted credits with an expiry and a priority; one reference is one grant.';

-- Draws p_amount from the wallet's open lots, lowest priority number first, then earliest expiry
-- (none last), then oldest; the caller holds the wallet's lock and moves the balance. Returns what
-- was drawn from grants (at most granted_remaining; the rest is purchased credits).
CREATE FUNCTION ledger_draw_grants(p_user_id uuid, p_amount numeric) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
    v_left numeric := p_amount;
    v_lot  credit_grants;
    v_take numeric;
BEGIN
    FOR v_lot IN SELECT * FROM credit_grants g
                  WHERE g.user_id = p_user_id AND g.remaining > 0
                  ORDER BY g.priority, g.expires_at NULLS LAST, g.id
                  FOR UPDATE LOOP
        EXIT WHEN v_left <= 0;
        v_take := least(v_left, v_lot.remaining);
        UPDATE credit_grants SET remaining = remaining - v_take WHERE id = v_lot.id;
        v_left := v_left - v_take;
    END LOOP;
    RETURN p_amount - v_left;
END $$;

-- The debit writer of 0012, drawing grants first for every debit but a refund (a refund takes back
-- what a payment bought: purchased credits). A wallet with no grant left pays one comparison.
CREATE OR REPLACE FUNCTION ledger_write_debit(p_user user_credits, p_amount numeric, p_transaction_type text,
                                              p_reference text, p_description text)
RETURNS TABLE(success boolean, new_balance numeric, transaction_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_from_allowance numeric := 0;
    v_from_grants    numeric := 0;
    v_balance        numeric;
    v_txn_id         bigint;
BEGIN
    IF p_transaction_type = 'usage' THEN
        v_from_allowance := CASE WHEN p_user.monthly_allowance IS NULL THEN p_amount
                                 ELSE least(p_amount, greatest(p_user.monthly_allowance - p_user.credits_used_this_month, 0))
                            END;
    END IF;
    -- p_user is the row the caller read under the wallet's lock: its granted_remaining is current
    IF p_transaction_type <> 'refund' AND p_amount > v_from_allowance AND p_user.granted_remaining > 0 THEN
        v_from_grants := ledger_draw_grants(p_user.user_id, p_amount - v_from_allowance);
    END IF;

    PERFORM set_config('ledger.balance_writer', 'on', true);
    UPDATE user_credits
       SET balance = balance - (p_amount - v_from_allowance),
           granted_remaining = granted_remaining - v_from_grants,
           credits_used_this_month = credits_used_this_month
                                     + CASE WHEN p_transaction_type = 'usage' THEN p_amount ELSE 0 END,
           updated_at = now()
     WHERE user_id = p_user.user_id
    RETURNING balance INTO v_balance;
    PERFORM set_config('ledger.balance_writer', 'off', true);

    INSERT INTO credit_transactions
        (user_id, transaction_type, amount, balance_after, allowance_used, description, reference_id)
    VALUES (p_user.user_id, p_transaction_type, -(p_amount - v_from_allowance), v_balance,
            v_from_allowance, p_description, p_reference)
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_txn_id;
    IF v_txn_id IS NULL THEN
        RAISE EXCEPTION 'reference % (%) is already used by another transaction', p_reference, p_transaction_type
            USING ERRCODE = 'LG004', HINT = 'A reference identifies one operation on one account; use a new one.';
    END IF;

    RETURN QUERY SELECT true, v_balance, v_txn_id;
END $$;

-- 0008's refund, taking back purchased credits only: at most the balance less what is granted.
CREATE OR REPLACE FUNCTION refund_purchased_credits(p_user_id uuid, p_credits numeric, p_reference text,
                                                    p_description text DEFAULT NULL)
RETURNS TABLE(success boolean, new_balance numeric, transaction_id bigint, refunded numeric, shortfall numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v_user  user_credits;
    v_first credit_transactions;
    v_empty ledger_empty_applications;
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
        PERFORM ledger_require_same_account(p_reference, v_first.user_id, p_user_id);
        RETURN QUERY SELECT true, v_first.balance_after, v_first.id, -v_first.amount, p_credits + v_first.amount;
        RETURN;
    END IF;
    SELECT * INTO v_empty FROM ledger_empty_applications e WHERE e.kind = 'refund' AND e.reference = p_reference;
    IF FOUND THEN
        PERFORM ledger_require_same_account(p_reference, v_empty.user_id, p_user_id);
        RETURN QUERY SELECT true, v_empty.balance_after, NULL::bigint, 0::numeric(20, 6), p_credits;
        RETURN;
    END IF;
    v_take := least(p_credits, v_user.balance - v_user.granted_remaining);
    IF v_take = 0 THEN
        INSERT INTO ledger_empty_applications (kind, reference, user_id, requested, balance_after)
        VALUES ('refund', p_reference, p_user_id, p_credits, v_user.balance);
        RETURN QUERY SELECT true, v_user.balance, NULL::bigint, 0::numeric(20, 6), p_credits;
        RETURN;
    END IF;
    SELECT * INTO v_debit FROM ledger_write_debit(v_user, v_take, 'refund', p_reference, p_description);
    RETURN QUERY SELECT true, v_debit.new_balance, v_debit.transaction_id, v_take, p_credits - v_take;
END $$;

-- Expires what is left of lots whose expiry has passed (at most p_batch), each by an `expiry`
-- transaction row (reference 'grant:<id>', so it happens once). Wallets are locked in user_id order
-- like every writer. Returns how many lots expired.
CREATE FUNCTION expire_credit_grants(p_batch integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_lot   credit_grants;
    v_user  user_credits;
    v_count integer := 0;
    v_bal   numeric;
    v_txn   bigint;
BEGIN
    FOR v_lot IN SELECT * FROM credit_grants g
                  WHERE g.remaining > 0 AND g.expires_at <= now()
                  ORDER BY g.user_id, g.id
                  LIMIT p_batch LOOP
        v_user := ledger_lock_user(v_lot.user_id);
        SELECT * INTO v_lot FROM credit_grants g WHERE g.id = v_lot.id FOR UPDATE;
        CONTINUE WHEN v_lot.remaining = 0;
        PERFORM set_config('ledger.balance_writer', 'on', true);
        UPDATE user_credits
           SET balance = balance - v_lot.remaining, granted_remaining = granted_remaining - v_lot.remaining,
               updated_at = now()
         WHERE user_id = v_lot.user_id
        RETURNING balance INTO v_bal;
        PERFORM set_config('ledger.balance_writer', 'off', true);
        INSERT INTO credit_transactions (user_id, transaction_type, amount, balance_after, description, reference_id)
        VALUES (v_lot.user_id, 'expiry', -v_lot.remaining, v_bal,
                format('%s granted %s expired', v_lot.kind, to_char(v_lot.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')),
                'grant:' || v_lot.id)
        RETURNING id INTO v_txn;
        UPDATE credit_grants SET remaining = 0, expired_at = now(), expiry_transaction_id = v_txn WHERE id = v_lot.id;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END $$;
COMMENT ON FUNCTION expire_credit_grants(integer) IS
    'Expires due grant lots, each by one expiry transaction; run by maintenance, safe to run again.';

-- credits.expiring, once per lot, for lots with credits left that expire within p_within.
CREATE FUNCTION tell_expiring_grants(p_within interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_lot   credit_grants;
    v_count integer := 0;
BEGIN
    FOR v_lot IN SELECT * FROM credit_grants g
                  WHERE g.remaining > 0 AND g.expiring_told_at IS NULL AND g.expires_at <= now() + p_within
                    AND g.expires_at > now()
                  ORDER BY g.expires_at
                  LIMIT 1000
                  FOR UPDATE SKIP LOCKED LOOP
        PERFORM ledger_emit(v_lot.user_id, 'credits.expiring',
                            jsonb_build_object('grant_id', v_lot.id, 'remaining', v_lot.remaining::text,
                                               'amount', v_lot.amount::text, 'kind', v_lot.kind,
                                               'expires_at', v_lot.expires_at),
                            'credits.expiring:' || v_lot.id);
        UPDATE credit_grants SET expiring_told_at = now() WHERE id = v_lot.id;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END $$;

-- The reconciliation view of 0002, with the grants' invariants across tables.
CREATE OR REPLACE VIEW ledger_reconciliation AS
SELECT u.user_id, 'balance_mismatch'::text AS problem, u.balance AS expected,
       coalesce(t.total, 0::numeric) AS actual, NULL::bigint AS transaction_id
  FROM user_credits u
  LEFT JOIN (SELECT user_id, sum(amount) AS total FROM credit_transactions GROUP BY user_id) t USING (user_id)
 WHERE u.balance <> coalesce(t.total, 0::numeric)
UNION ALL
SELECT c.user_id, 'chain_break', c.previous_after + c.amount, c.balance_after, c.id
  FROM (SELECT user_id, id, amount, balance_after,
               coalesce(lag(balance_after) OVER (PARTITION BY user_id ORDER BY id), 0::numeric) AS previous_after
          FROM credit_transactions) c
 WHERE c.balance_after <> c.previous_after + c.amount
UNION ALL
SELECT u.user_id, 'held_mismatch', u.credits_held, coalesce(h.total, 0::numeric), NULL::bigint
  FROM user_credits u
  LEFT JOIN (SELECT user_id, sum(amount) AS total FROM credit_holds WHERE status = 'held' GROUP BY user_id) h
       USING (user_id)
 WHERE u.credits_held <> coalesce(h.total, 0::numeric)
UNION ALL
SELECT u.user_id, 'grants_mismatch', u.granted_remaining, coalesce(g.total, 0::numeric), NULL::bigint
  FROM user_credits u
  LEFT JOIN (SELECT user_id, sum(remaining) AS total FROM credit_grants GROUP BY user_id) g USING (user_id)
 WHERE u.granted_remaining <> coalesce(g.total, 0::numeric)
UNION ALL
SELECT g.user_id, 'expired_grant_left', 0::numeric, g.remaining, g.transaction_id
  FROM credit_grants g
 WHERE g.remaining > 0 AND g.expires_at <= now() - interval '1 day';
COMMENT ON VIEW ledger_reconciliation IS
    'Broken invariants; empty when healthy. expired_grant_left: a lot a day past its expiry still holds credits (maintenance is not running).';

-- A wallet's credits by lot: its grants with credits left (spending order) and the purchased part.
CREATE VIEW credit_lots AS
SELECT g.user_id, 'grant'::text AS lot, g.id AS grant_id, g.kind, g.priority, g.expires_at, g.amount, g.remaining
  FROM credit_grants g
 WHERE g.remaining > 0
UNION ALL
SELECT u.user_id, 'purchased', NULL, 'purchase', NULL, NULL, NULL, u.balance - u.granted_remaining
  FROM user_credits u
 WHERE u.balance - u.granted_remaining > 0;

-- 0003's debit, where a refund debit takes purchased credits only: refused (success false, nothing
-- written) when the purchased part, less what is held, cannot cover it.
CREATE OR REPLACE FUNCTION debit_user_credits(p_user_id uuid, p_amount numeric, p_transaction_type text,
                                              p_request_id text DEFAULT NULL, p_description text DEFAULT NULL)
RETURNS TABLE(success boolean, new_balance numeric, transaction_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_user      user_credits;
    v_first     credit_transactions;
    v_spendable numeric;
BEGIN
    PERFORM ledger_require_amount(p_amount);
    IF p_transaction_type IS NULL OR p_transaction_type NOT IN ('usage', 'refund', 'admin_adjustment') THEN
        RAISE EXCEPTION 'transaction type % cannot debit credits', coalesce(quote_literal(p_transaction_type), 'NULL')
            USING ERRCODE = 'LG002',
                  HINT = 'debit_user_credits takes usage, refund or admin_adjustment.';
    END IF;
    IF p_transaction_type = 'usage' AND nullif(btrim(p_request_id), '') IS NULL THEN
        RAISE EXCEPTION 'a usage debit needs its request id'
            USING ERRCODE = 'LG008', HINT = 'Pass the request id so a retried request cannot be charged twice.';
    END IF;

    v_user := ledger_lock_user(p_user_id);
    v_first := ledger_find_replay(p_user_id, p_amount, p_transaction_type, p_request_id, true);
    IF v_first.id IS NOT NULL THEN
        RETURN QUERY SELECT true, v_first.balance_after, v_first.id;
        RETURN;
    END IF;

    v_spendable := CASE p_transaction_type WHEN 'usage' THEN ledger_spendable(v_user)
                                           WHEN 'refund' THEN v_user.balance - v_user.granted_remaining
                                           ELSE v_user.balance END;
    IF v_spendable IS NOT NULL AND p_amount > v_spendable - v_user.credits_held THEN
        RETURN QUERY SELECT false, v_user.balance, NULL::bigint;
        RETURN;
    END IF;

    RETURN QUERY SELECT * FROM ledger_write_debit(v_user, p_amount, p_transaction_type, p_request_id, p_description);
END $$;
