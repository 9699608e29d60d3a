-- The Checkout Sessions this service created for credit packages, recorded when created.
--
-- A checkout.session.completed event is trusted only for a session listed here, and only when
-- Stripe took exactly the recorded price in the recorded currency: the session's own metadata
-- (which any other integration or payment link on the same Stripe account could carry) never sets
-- the price, the credits or the user. Sessions created before this table existed are not listed:
-- their completion is kept for review (the service was unreleased, so there are none).
CREATE TABLE stripe_checkout_sessions (
    session_id  text PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES user_credits (user_id),
    package_id  uuid NOT NULL REFERENCES credit_packages (id),
    credits     numeric(20, 6) NOT NULL CHECK (credits > 0),
    price_cents bigint NOT NULL CHECK (price_cents > 0),
    currency    text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_stripe_checkout_sessions_user ON stripe_checkout_sessions (user_id, created_at DESC);
