-- Dashboard sessions that were signed out of before they expired. A session is a signed cookie
-- (api/web/sessions.py); deleting it in the browser does not stop a copy of it (a shared computer,
-- a proxy's log) from working until its expiry, so signing out records the session's nonce here
-- and every page view checks it. A row is worth keeping only until the session would have expired
-- anyway: signing out prunes the expired ones, so the table holds at most the sessions of the
-- last LEDGER_SESSION_TTL_SECONDS.
CREATE TABLE dashboard_sign_outs (
    nonce text PRIMARY KEY CHECK (length(nonce) BETWEEN 16 AND 64),
    expires_at timestamptz NOT NULL,
    signed_out_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dashboard_sign_outs IS
    'Dashboard sessions ended by signing out, kept until they would have expired (the nonce of a signed session cookie, not a secret: the cookie needs the service''s signature too).';
