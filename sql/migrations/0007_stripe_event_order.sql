-- Stripe events in any order, with any status (issue 8, section 2).
--
-- stripe_events gains three final statuses, each answered 2xx so Stripe stops retrying:
--   stale:    older than what was already applied to its subscription (or an invoice for a period
--             not newer than the one paid); kept, changes nothing.
--   rejected: signed but can never be applied (unknown package, zero amount, bad ids, wrong types,
--             missing metadata); last_error says why.
--   review:   real money that does not match what was sold (currency, amount, credits); nothing is
--             credited, a human decides.
-- created is the event's own time (Stripe's `created`); reference is the payment intent of a
-- rejected checkout, so its later refunds and disputes are recognised instead of waiting forever.
ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_status_check;
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_status_check
    CHECK (status IN ('received', 'processed', 'ignored', 'deferred', 'stale', 'rejected', 'review'));
ALTER TABLE stripe_events ADD COLUMN created timestamptz;
ALTER TABLE stripe_events ADD COLUMN reference text;
CREATE INDEX idx_stripe_events_reference ON stripe_events (reference) WHERE reference IS NOT NULL;
DROP INDEX idx_stripe_events_open;
CREATE INDEX idx_stripe_events_open ON stripe_events (received_at)
    WHERE status IN ('received', 'deferred', 'rejected', 'review');

-- A purchase whose session does not match its package (currency, amount, credits) is kept as
-- 'review' with its reason and credits nothing.
ALTER TABLE stripe_payments DROP CONSTRAINT stripe_payments_status_check;
ALTER TABLE stripe_payments ADD CONSTRAINT stripe_payments_status_check
    CHECK (status IN ('pending', 'paid', 'partially_refunded', 'refunded', 'review'));
ALTER TABLE stripe_payments ADD COLUMN review_reason text;

-- The order of a subscription's events: the last applied subscription event's created time
-- (Unix seconds), its status rank (the tie-break within one second) and its id (the last
-- tie-break). current_period_start/end are the newest period paid by an invoice: the cycle only
-- moves forward from there. NULL last_event_*: only invoices have been seen.
ALTER TABLE stripe_subscriptions ADD COLUMN last_event_created bigint;
ALTER TABLE stripe_subscriptions ADD COLUMN last_event_rank smallint;
ALTER TABLE stripe_subscriptions ADD COLUMN last_event_id text;
ALTER TABLE stripe_subscriptions ADD CONSTRAINT stripe_subscriptions_status_check
    CHECK (status IN ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'canceled',
                      'unpaid', 'paused')) NOT VALID;  -- rows written before this release are not re-checked
