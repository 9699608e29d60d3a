-- Wallets that people make for themselves (a sign-up's personal workspace, a team created on the
-- dashboard) start with no free allowance: on the trial tier, with monthly_allowance 0. Otherwise
-- anyone could farm the trial tier's 100 credits a month by signing up again and again, or by
-- creating team after team. Credits come from a purchase, a subscription or the operator's grant;
-- the operator's own `ledger users create` and `ledger workspaces create` keep the trial allowance.
-- A later tier change (set_user_tier) sets the allowance of the tier, as for every wallet.

CREATE FUNCTION create_self_service_wallet(p_email text DEFAULT NULL) RETURNS user_credits
LANGUAGE plpgsql AS $$
DECLARE
    v_user user_credits;
BEGIN
    v_user := create_ledger_user(p_email, 'trial', 'balanced');
    UPDATE user_credits SET monthly_allowance = 0, updated_at = now()
     WHERE user_id = v_user.user_id
    RETURNING * INTO v_user;
    RETURN v_user;
END $$;
COMMENT ON FUNCTION create_self_service_wallet(text) IS
    'Creates a wallet (and its workspace) on the trial tier with no free allowance: nothing to farm by signing up again.';
