-- A reference that was applied but moved no credits is still applied: replaying it later, when
-- the balance has grown, must not take or hold anything.
--
-- refund_purchased_credits with nothing to take back (everything already spent) and
-- hold_disputed_credits with nothing to hold wrote no row under their reference, so the same
-- reference used again later could take back or hold credits: one Stripe refund or dispute
-- applied twice. They now record such an empty application here, and a replay answers as the
-- first call did. A replay from another account raises LG004, as every other reference does.

CREATE TABLE ledger_empty_applications (
    kind          text NOT NULL CHECK (kind IN ('refund', 'dispute_hold')),
    reference     text NOT NULL,
    user_id       uuid NOT NULL REFERENCES user_credits (user_id),
    requested     numeric(20, 6) NOT NULL,
    balance_after numeric(20, 6) NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, reference)
);

-- Raises LG004 when p_reference was applied to another account than p_user_id.
CREATE FUNCTION ledger_require_same_account(p_reference text, p_first_user uuid, p_user_id uuid) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_first_user <> p_user_id THEN
        RAISE EXCEPTION 'reference % was already applied to another account', p_reference
            USING ERRCODE = 'LG004',
                  DETAIL = format('first: user %s; now: user %s', p_first_user, p_user_id),
                  HINT = 'A reference identifies one operation on one account; use a new one.';
    END IF;
END $$;

-- refund_purchased_credits: takes back up to p_credits of purchased balance for a Stripe refund
-- or a lost dispute, never below zero: what the balance cannot cover (already spent) comes back
-- as shortfall. Writes one refund transaction when anything is taken, else records the empty
-- refund. Replaying a reference returns the first result and takes nothing more, even when the
-- first took nothing; from another account it raises LG004.
CREATE OR REPLACE FUNCTION refund_purchased_credits(p_user_id uuid, p_credits numeric, p_reference text,
                                                    p_description text DEFAULT NULL)
RETURNS TABLE (success boolean, new_balance numeric, transaction_id bigint, refunded numeric, shortfall numeric)
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
    v_take := least(p_credits, v_user.balance);
    IF v_take = 0 THEN
        INSERT INTO ledger_empty_applications (kind, reference, user_id, requested, balance_after)
        VALUES ('refund', p_reference, p_user_id, p_credits, v_user.balance);
        RETURN QUERY SELECT true, v_user.balance, NULL::bigint, 0::numeric(20, 6), p_credits;
        RETURN;
    END IF;
    SELECT * INTO v_debit FROM ledger_write_debit(v_user, v_take, 'refund', p_reference, p_description);
    RETURN QUERY SELECT true, v_debit.new_balance, v_debit.transaction_id, v_take, p_credits - v_take;
END $$;

-- hold_disputed_credits: while a dispute is open, up to p_credits of the user's purchased
-- balance (what is not already held) is held so it cannot be spent. The hold never expires; it
-- is released when the dispute closes. Returns the hold (NULL when nothing could be held, which
-- is recorded: a replay holds nothing then either). From another account it raises LG004.
CREATE OR REPLACE FUNCTION hold_disputed_credits(p_user_id uuid, p_credits numeric, p_dispute_id text)
RETURNS TABLE (hold_id uuid, held numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v_user   user_credits;
    v_first  credit_holds;
    v_empty  ledger_empty_applications;
    v_amount numeric;
    v_hold   uuid;
BEGIN
    PERFORM ledger_require_amount(p_credits);
    IF nullif(btrim(p_dispute_id), '') IS NULL THEN
        RAISE EXCEPTION 'a dispute hold needs its dispute id' USING ERRCODE = 'LG008';
    END IF;
    v_user := ledger_lock_user(p_user_id);
    SELECT * INTO v_first FROM credit_holds h WHERE h.request_id = 'dispute:' || p_dispute_id;
    IF FOUND THEN
        PERFORM ledger_require_same_account(p_dispute_id, v_first.user_id, p_user_id);
        RETURN QUERY SELECT v_first.hold_id, v_first.amount;
        RETURN;
    END IF;
    SELECT * INTO v_empty FROM ledger_empty_applications e
     WHERE e.kind = 'dispute_hold' AND e.reference = p_dispute_id;
    IF FOUND THEN
        PERFORM ledger_require_same_account(p_dispute_id, v_empty.user_id, p_user_id);
        RETURN QUERY SELECT NULL::uuid, 0::numeric(20, 6);
        RETURN;
    END IF;
    v_amount := least(p_credits, greatest(v_user.balance - v_user.credits_held, 0));
    IF v_amount = 0 THEN
        INSERT INTO ledger_empty_applications (kind, reference, user_id, requested, balance_after)
        VALUES ('dispute_hold', p_dispute_id, p_user_id, p_credits, v_user.balance);
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
