-- The stored functions: the only writers of balances.
--
-- Project SQLSTATEs (class LG); ledger/errors.py maps each to an exception class:
--   LG001 invalid amount            LG004 idempotency conflict   LG007 direct ledger write refused
--   LG002 invalid transaction type  LG005 unknown hold           LG008 missing reference
--   LG003 unknown user              LG006 hold not open          LG009 invalid argument
--
-- Every function that changes a user's money first locks that user's user_credits row, so all
-- writers of one account are serialised and see each other's committed work; a function that
-- touches several accounts locks them in user_id order.

-- Guard: balances change only inside these functions, which raise ledger.balance_writer around
-- their own UPDATE. A hand-written UPDATE (or an INSERT with a balance) is refused.
CREATE FUNCTION ledger_guard_balance() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('ledger.balance_writer', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    IF (TG_OP = 'INSERT' AND NEW.balance <> 0)
       OR (TG_OP = 'UPDATE' AND NEW.balance IS DISTINCT FROM OLD.balance) THEN
        RAISE EXCEPTION 'balances change only through the ledger functions'
            USING ERRCODE = 'LG007',
                  DETAIL = format('user %s: balance %s -> %s', NEW.user_id,
                                  CASE WHEN TG_OP = 'UPDATE' THEN OLD.balance::text ELSE 'none' END, NEW.balance),
                  HINT = 'Use add_user_credits() or debit_user_credits(); they write the credit_transactions row.';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER user_credits_guard_balance
    BEFORE INSERT OR UPDATE OF balance ON user_credits
    FOR EACH ROW EXECUTE FUNCTION ledger_guard_balance();

-- Guard: the audit log is append-only.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'LG007',
              HINT = 'Correct a mistake with a new transaction (admin_adjustment), never by editing history.';
END $$;

CREATE TRIGGER credit_transactions_append_only
    BEFORE UPDATE OR DELETE ON credit_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- Raises LG001 unless p_amount is a finite number > 0 (>= 0 when p_allow_zero) with at most 6
-- decimal places, so no amount is ever rounded silently on its way into a numeric(20,6) column.
CREATE FUNCTION ledger_require_amount(p_amount numeric, p_allow_zero boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_amount IS NULL OR p_amount = 'NaN'::numeric OR p_amount IN ('Infinity'::numeric, '-Infinity'::numeric) THEN
        RAISE EXCEPTION 'amount must be a finite number, got %', coalesce(p_amount::text, 'NULL')
            USING ERRCODE = 'LG001';
    END IF;
    IF p_amount < 0 OR (p_amount = 0 AND NOT p_allow_zero) THEN
        RAISE EXCEPTION 'amount must be greater than 0, got %', p_amount
            USING ERRCODE = 'LG001',
                  HINT = 'Use add_user_credits() to add and debit_user_credits() to remove; both take positive amounts.';
    END IF;
    IF p_amount <> round(p_amount, 6) THEN
        RAISE EXCEPTION 'amount % has more than 6 decimal places', p_amount
            USING ERRCODE = 'LG001', HINT = 'Round the amount to 6 decimal places before calling.';
    END IF;
END $$;

-- Locks and returns the user's row (LG003 when there is none). A billing cycle that has ended is
-- rolled forward here, by whole months from its start, with credits_used_this_month reset: every
-- writer therefore sees the allowance of the current cycle.
CREATE FUNCTION ledger_lock_user(p_user_id uuid) RETURNS user_credits
LANGUAGE plpgsql AS $$
DECLARE
    v_user   user_credits;
    v_age    interval;
    v_months integer;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'user_id is required' USING ERRCODE = 'LG003';
    END IF;
    SELECT * INTO v_user FROM user_credits WHERE user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown user %', p_user_id
            USING ERRCODE = 'LG003',
                  HINT = 'Create the account first (a user_credits row); credits are never added to an unknown user.';
    END IF;
    IF v_user.billing_cycle_start + interval '1 month' <= now() THEN
        v_age := age(now(), v_user.billing_cycle_start);
        v_months := (extract(year FROM v_age) * 12 + extract(month FROM v_age))::integer;
        UPDATE user_credits
           SET billing_cycle_start = billing_cycle_start + make_interval(months => v_months),
               credits_used_this_month = 0,
               updated_at = now()
         WHERE user_id = p_user_id
        RETURNING * INTO v_user;
    END IF;
    RETURN v_user;
END $$;

-- What the user can still spend on usage: the cycle's remaining allowance plus the purchased
-- balance. NULL = unlimited.
CREATE FUNCTION ledger_spendable(p_user user_credits) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_user.monthly_allowance IS NULL THEN NULL
                ELSE greatest(p_user.monthly_allowance - p_user.credits_used_this_month, 0) + p_user.balance
           END
$$;

-- Writes one debit for a locked user: usage draws the cycle's allowance first, then the balance;
-- other types draw the balance only. The caller has checked that it is affordable. Writes exactly
-- one credit_transactions row (its amount is the balance's change, 0 when the allowance covered
-- it all). A reference already used by another account raises LG004.
CREATE FUNCTION ledger_write_debit(p_user user_credits, p_amount numeric, p_transaction_type text,
                                   p_reference text, p_description text)
RETURNS TABLE (success boolean, new_balance numeric, transaction_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_from_allowance numeric := 0;
    v_balance        numeric;
    v_txn_id         bigint;
BEGIN
    IF p_transaction_type = 'usage' THEN
        v_from_allowance := CASE WHEN p_user.monthly_allowance IS NULL THEN p_amount
                                 ELSE least(p_amount, greatest(p_user.monthly_allowance - p_user.credits_used_this_month, 0))
                            END;
    END IF;

    PERFORM set_config('ledger.balance_writer', 'on', true);
    UPDATE user_credits
       SET balance = balance - (p_amount - v_from_allowance),
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

-- Raises LG004 when an earlier transaction with this (type, reference) differs from the request;
-- returns that transaction (or nothing) so the caller can answer a replay with the first result.
CREATE FUNCTION ledger_find_replay(p_user_id uuid, p_amount numeric, p_transaction_type text,
                                   p_reference text, p_is_debit boolean)
RETURNS credit_transactions
LANGUAGE plpgsql AS $$
DECLARE
    v_first     credit_transactions;
    v_requested numeric;
BEGIN
    IF p_reference IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_first FROM credit_transactions
     WHERE transaction_type = p_transaction_type AND reference_id = p_reference;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- a debit recorded only the balance part in amount; what was asked for is that plus the allowance part
    v_requested := CASE WHEN v_first.amount > 0 THEN v_first.amount
                        ELSE v_first.allowance_used - v_first.amount END;
    IF v_first.user_id <> p_user_id OR v_requested <> p_amount OR (v_first.amount <= 0) <> p_is_debit THEN
        RAISE EXCEPTION 'reference % (%) was already applied with a different amount, account or direction',
                        p_reference, p_transaction_type
            USING ERRCODE = 'LG004',
                  DETAIL = format('first: user %s amount %s; now: user %s amount %s',
                                  v_first.user_id, v_requested, p_user_id, p_amount),
                  HINT = 'A retry must repeat the original request exactly; a new operation needs a new reference.';
    END IF;
    RETURN v_first;
END $$;

-- add_user_credits: adds p_amount (> 0) to the balance and writes one transaction row.
-- Types: purchase (needs the payment intent), bonus, admin_adjustment, refund (credit given back).
-- Idempotent on (type, payment_intent_id): a replay returns the first result and writes nothing;
-- the same reference with another amount or account raises LG004.
CREATE FUNCTION add_user_credits(p_user_id uuid, p_amount numeric, p_transaction_type text,
                                 p_payment_intent_id text DEFAULT NULL, p_description text DEFAULT NULL)
RETURNS TABLE (success boolean, new_balance numeric, transaction_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_user    user_credits;
    v_first   credit_transactions;
    v_balance numeric;
    v_txn_id  bigint;
BEGIN
    PERFORM ledger_require_amount(p_amount);
    IF p_transaction_type IS NULL OR p_transaction_type NOT IN ('purchase', 'bonus', 'admin_adjustment', 'refund') THEN
        RAISE EXCEPTION 'transaction type % cannot add credits', coalesce(quote_literal(p_transaction_type), 'NULL')
            USING ERRCODE = 'LG002',
                  HINT = 'add_user_credits takes purchase, bonus, admin_adjustment or refund; usage is a debit.';
    END IF;
    IF p_transaction_type = 'purchase' AND nullif(btrim(p_payment_intent_id), '') IS NULL THEN
        RAISE EXCEPTION 'a purchase needs its payment intent id'
            USING ERRCODE = 'LG008', HINT = 'Pass the Stripe payment intent so a retried webhook cannot credit twice.';
    END IF;

    v_user := ledger_lock_user(p_user_id);
    v_first := ledger_find_replay(p_user_id, p_amount, p_transaction_type, p_payment_intent_id, false);
    IF v_first.id IS NOT NULL THEN
        RETURN QUERY SELECT true, v_first.balance_after, v_first.id;
        RETURN;
    END IF;

    PERFORM set_config('ledger.balance_writer', 'on', true);
    UPDATE user_credits SET balance = balance + p_amount, updated_at = now()
     WHERE user_id = p_user_id
    RETURNING balance INTO v_balance;
    PERFORM set_config('ledger.balance_writer', 'off', true);

    INSERT INTO credit_transactions
        (user_id, transaction_type, amount, balance_after, description, reference_id, payment_intent_id)
    VALUES (p_user_id, p_transaction_type, p_amount, v_balance, p_description, p_payment_intent_id,
            CASE WHEN p_transaction_type IN ('purchase', 'refund') THEN p_payment_intent_id END)
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_txn_id;
    IF v_txn_id IS NULL THEN
        RAISE EXCEPTION 'reference % (%) is already used by another transaction', p_payment_intent_id, p_transaction_type
            USING ERRCODE = 'LG004', HINT = 'A reference identifies one operation on one account; use a new one.';
    END IF;

    RETURN QUERY SELECT true, v_balance, v_txn_id;
END $$;

-- debit_user_credits: removes p_amount (> 0). Usage draws the cycle's allowance first, then the
-- balance, and needs a request id; refund and admin_adjustment draw the balance only. Credits held
-- for requests in flight are not spendable. Not affordable: (false, balance, NULL), nothing written.
-- Unlimited allowance never refuses usage. Idempotent on (type, request id) like add_user_credits.
CREATE FUNCTION debit_user_credits(p_user_id uuid, p_amount numeric, p_transaction_type text,
                                   p_request_id text DEFAULT NULL, p_description text DEFAULT NULL)
RETURNS TABLE (success boolean, new_balance numeric, transaction_id bigint)
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

    v_spendable := CASE WHEN p_transaction_type = 'usage' THEN ledger_spendable(v_user) ELSE v_user.balance END;
    IF v_spendable IS NOT NULL AND p_amount > v_spendable - v_user.credits_held THEN
        RETURN QUERY SELECT false, v_user.balance, NULL::bigint;
        RETURN;
    END IF;

    RETURN QUERY SELECT * FROM ledger_write_debit(v_user, p_amount, p_transaction_type, p_request_id, p_description);
END $$;

-- get_quota_usage_percentage: credits used this cycle as a percentage of the monthly allowance,
-- rounded to 2 places; above 100 once usage has gone on into the purchased balance. 0 for an
-- unlimited or zero allowance and for a cycle that has ended (the next writer resets it).
CREATE FUNCTION get_quota_usage_percentage(p_user_id uuid) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_user user_credits;
BEGIN
    SELECT * INTO v_user FROM user_credits WHERE user_id = p_user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown user %', p_user_id USING ERRCODE = 'LG003';
    END IF;
    IF coalesce(v_user.monthly_allowance, 0) = 0 OR v_user.billing_cycle_start + interval '1 month' <= now() THEN
        RETURN 0;
    END IF;
    RETURN round(v_user.credits_used_this_month / v_user.monthly_allowance * 100, 2);
END $$;

-- Returns the user's expired-but-open holds' credits to them (caller holds the user's lock).
CREATE FUNCTION ledger_expire_user_holds(p_user_id uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
    v_freed numeric;
BEGIN
    WITH expired AS (
        UPDATE credit_holds SET status = 'expired', resolved_at = now()
         WHERE user_id = p_user_id AND status = 'held' AND expires_at <= now()
        RETURNING amount
    )
    SELECT count(*), coalesce(sum(amount), 0) INTO v_count, v_freed FROM expired;
    IF v_count > 0 THEN
        UPDATE user_credits SET credits_held = credits_held - v_freed, updated_at = now()
         WHERE user_id = p_user_id;
    END IF;
    RETURN v_count;
END $$;

-- reserve_credits: holds p_amount for a request in flight, in one call, before any upstream work.
-- Succeeds with a hold id when the spendable credits (allowance left + balance - other holds)
-- cover it, else (false, NULL, spendable) and nothing is written. Unlimited users always succeed
-- (available NULL). Idempotent on request id. The hold expires after p_ttl unless settled or
-- released; the user's own expired holds are returned first, so a crash never strands credits.
CREATE FUNCTION reserve_credits(p_user_id uuid, p_amount numeric, p_request_id text,
                                p_ttl interval DEFAULT interval '15 minutes', p_description text DEFAULT NULL)
RETURNS TABLE (success boolean, hold_id uuid, available numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v_user      user_credits;
    v_hold      credit_holds;
    v_available numeric;
BEGIN
    PERFORM ledger_require_amount(p_amount);
    IF nullif(btrim(p_request_id), '') IS NULL THEN
        RAISE EXCEPTION 'a hold needs its request id' USING ERRCODE = 'LG008';
    END IF;
    IF p_ttl IS NULL OR p_ttl <= interval '0' THEN
        RAISE EXCEPTION 'hold time-to-live must be positive, got %', coalesce(p_ttl::text, 'NULL')
            USING ERRCODE = 'LG009';
    END IF;

    v_user := ledger_lock_user(p_user_id);
    IF ledger_expire_user_holds(p_user_id) > 0 THEN
        SELECT * INTO v_user FROM user_credits WHERE user_id = p_user_id;
    END IF;
    v_available := ledger_spendable(v_user) - v_user.credits_held;

    SELECT * INTO v_hold FROM credit_holds h WHERE h.request_id = p_request_id;
    IF FOUND THEN
        IF v_hold.user_id <> p_user_id OR v_hold.amount <> p_amount THEN
            RAISE EXCEPTION 'request % already holds credits with a different amount or account', p_request_id
                USING ERRCODE = 'LG004',
                      DETAIL = format('first: user %s amount %s', v_hold.user_id, v_hold.amount);
        END IF;
        RETURN QUERY SELECT true, v_hold.hold_id, v_available;
        RETURN;
    END IF;

    IF v_available IS NOT NULL AND p_amount > v_available THEN
        RETURN QUERY SELECT false, NULL::uuid, v_available;
        RETURN;
    END IF;

    INSERT INTO credit_holds (user_id, request_id, amount, description, expires_at)
    VALUES (p_user_id, p_request_id, p_amount, p_description, now() + p_ttl)
    RETURNING * INTO v_hold;
    UPDATE user_credits SET credits_held = credits_held + p_amount, updated_at = now()
     WHERE user_id = p_user_id;

    RETURN QUERY SELECT true, v_hold.hold_id, v_available - p_amount;
END $$;

-- settle_credit_hold: in one call, charges the actual cost (usage, allowance first, reference =
-- the hold's request id) and releases the rest of the hold. A cost above the hold is charged as
-- far as allowance + balance go and never below zero; the rest is recorded as the hold's
-- shortfall (settle_amount - charged). An expired hold still settles (the request was served).
-- Replay with the same amount returns the first result; another amount raises LG004; a released
-- hold raises LG006. A cost of 0 charges nothing and writes no transaction.
CREATE FUNCTION settle_credit_hold(p_hold_id uuid, p_amount numeric, p_description text DEFAULT NULL)
RETURNS TABLE (success boolean, new_balance numeric, transaction_id bigint, charged numeric, shortfall numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v_user    user_credits;
    v_hold    credit_holds;
    v_user_id uuid;
    v_charge  numeric;
    v_debit   record;
BEGIN
    PERFORM ledger_require_amount(p_amount, true);
    SELECT h.user_id INTO v_user_id FROM credit_holds h WHERE h.hold_id = p_hold_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown hold %', coalesce(p_hold_id::text, 'NULL') USING ERRCODE = 'LG005';
    END IF;
    v_user := ledger_lock_user(v_user_id);
    SELECT * INTO v_hold FROM credit_holds h WHERE h.hold_id = p_hold_id FOR UPDATE;

    IF v_hold.status = 'settled' THEN
        IF v_hold.settle_amount <> p_amount THEN
            RAISE EXCEPTION 'hold % was already settled for %', p_hold_id, v_hold.settle_amount
                USING ERRCODE = 'LG004', HINT = 'A settle is applied once; a retry must repeat the amount.';
        END IF;
        RETURN QUERY
            SELECT true, coalesce(t.balance_after, v_user.balance), v_hold.transaction_id, v_hold.charged,
                   v_hold.settle_amount - v_hold.charged
              FROM (SELECT 1) AS one
              LEFT JOIN credit_transactions t ON t.id = v_hold.transaction_id;
        RETURN;
    END IF;
    IF v_hold.status = 'released' THEN
        RAISE EXCEPTION 'hold % was released; nothing can be charged against it', p_hold_id
            USING ERRCODE = 'LG006';
    END IF;

    IF v_hold.status = 'held' THEN
        UPDATE user_credits SET credits_held = credits_held - v_hold.amount, updated_at = now()
         WHERE user_id = v_user_id
        RETURNING * INTO v_user;
    END IF;

    v_charge := least(p_amount, coalesce(ledger_spendable(v_user), p_amount));
    IF v_charge > 0 THEN
        SELECT * INTO v_debit
          FROM ledger_write_debit(v_user, v_charge, 'usage', v_hold.request_id,
                                  coalesce(p_description, v_hold.description));
    ELSE
        SELECT true AS success, v_user.balance AS new_balance, NULL::bigint AS transaction_id INTO v_debit;
    END IF;

    UPDATE credit_holds
       SET status = 'settled', settle_amount = p_amount, charged = v_charge,
           transaction_id = v_debit.transaction_id, resolved_at = now()
     WHERE credit_holds.hold_id = p_hold_id;

    RETURN QUERY SELECT true, v_debit.new_balance, v_debit.transaction_id, v_charge, p_amount - v_charge;
END $$;

-- release_credit_hold: gives a hold's credits back without charging (the request failed).
-- Returns the credits released; releasing an already released or expired hold releases 0.
-- A settled hold raises LG006.
CREATE FUNCTION release_credit_hold(p_hold_id uuid)
RETURNS TABLE (success boolean, released numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v_hold    credit_holds;
    v_user_id uuid;
BEGIN
    SELECT h.user_id INTO v_user_id FROM credit_holds h WHERE h.hold_id = p_hold_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown hold %', coalesce(p_hold_id::text, 'NULL') USING ERRCODE = 'LG005';
    END IF;
    PERFORM ledger_lock_user(v_user_id);
    SELECT * INTO v_hold FROM credit_holds h WHERE h.hold_id = p_hold_id FOR UPDATE;

    IF v_hold.status = 'settled' THEN
        RAISE EXCEPTION 'hold % was already settled; it cannot be released', p_hold_id USING ERRCODE = 'LG006';
    END IF;
    IF v_hold.status <> 'held' THEN
        RETURN QUERY SELECT true, 0::numeric;
        RETURN;
    END IF;

    UPDATE credit_holds SET status = 'released', resolved_at = now() WHERE credit_holds.hold_id = p_hold_id;
    UPDATE user_credits SET credits_held = credits_held - v_hold.amount, updated_at = now()
     WHERE user_id = v_user_id;
    RETURN QUERY SELECT true, v_hold.amount;
END $$;

-- expire_credit_holds: returns every hold past its expiry to its user (in user_id order, at most
-- p_max_users users per call so one run never locks too much at once). Returns holds expired.
CREATE FUNCTION expire_credit_holds(p_max_users integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_user_id uuid;
    v_total   integer := 0;
BEGIN
    FOR v_user_id IN
        SELECT DISTINCT h.user_id FROM credit_holds h
         WHERE h.status = 'held' AND h.expires_at <= now()
         ORDER BY h.user_id
         LIMIT p_max_users
    LOOP
        PERFORM ledger_lock_user(v_user_id);
        v_total := v_total + ledger_expire_user_holds(v_user_id);
    END LOOP;
    RETURN v_total;
END $$;

-- Reconciliation: every row is a broken invariant, so a healthy ledger returns none.
--   balance_mismatch: balance <> SUM(amount) of the user's transactions
--   chain_break:      a transaction's balance_after <> the previous one's + its amount
--   held_mismatch:    credits_held <> the sum of the user's open holds
CREATE VIEW ledger_reconciliation AS
SELECT u.user_id, 'balance_mismatch'::text AS problem, u.balance AS expected,
       coalesce(t.total, 0) AS actual, NULL::bigint AS transaction_id
  FROM user_credits u
  LEFT JOIN (SELECT user_id, sum(amount) AS total FROM credit_transactions GROUP BY user_id) t USING (user_id)
 WHERE u.balance <> coalesce(t.total, 0)
UNION ALL
SELECT c.user_id, 'chain_break', c.previous_after + c.amount, c.balance_after, c.id
  FROM (SELECT user_id, id, amount, balance_after,
               coalesce(lag(balance_after) OVER (PARTITION BY user_id ORDER BY id), 0) AS previous_after
          FROM credit_transactions) c
 WHERE c.balance_after <> c.previous_after + c.amount
UNION ALL
SELECT u.user_id, 'held_mismatch', u.credits_held, coalesce(h.total, 0), NULL
  FROM user_credits u
  LEFT JOIN (SELECT user_id, sum(amount) AS total FROM credit_holds WHERE status = 'held' GROUP BY user_id) h
       USING (user_id)
 WHERE u.credits_held <> coalesce(h.total, 0);
