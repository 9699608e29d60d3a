-- Input bounds: amounts within what numeric(20,6) holds, and BYOK key names unique among a
-- user's active keys only (a deleted key's name can be used again).

-- Refuses (LG001) an amount that is not a finite number > 0 (>= 0 with p_allow_zero), has more
-- than 6 decimal places, or does not fit numeric(20,6), the type of every credit column: an
-- amount that cannot be stored is refused with the project's code before any write, never left
-- to fail later as a numeric overflow.
CREATE OR REPLACE FUNCTION ledger_require_amount(p_amount numeric, p_allow_zero boolean DEFAULT false)
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
    IF p_amount >= 100000000000000 THEN
        RAISE EXCEPTION 'amount % is too large', p_amount
            USING ERRCODE = 'LG001',
                  DETAIL = 'Credit amounts are numeric(20,6): at most 99999999999999.999999.',
                  HINT = 'Check the amount; no balance can hold this many credits.';
    END IF;
END $$;

COMMENT ON FUNCTION ledger_require_amount(numeric, boolean) IS
    'LG001 unless the amount is finite, > 0 (or >= 0), has at most 6 decimals and fits numeric(20,6).';

-- A user's active keys have distinct names per provider; deleted (inactive) keys keep their
-- rows for the record but free their names.
ALTER TABLE user_provider_keys DROP CONSTRAINT IF EXISTS user_provider_keys_user_id_provider_key_name_key;
CREATE UNIQUE INDEX user_provider_keys_active_name
    ON user_provider_keys (user_id, provider, key_name) WHERE is_active;
