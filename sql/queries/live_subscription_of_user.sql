-- User $1's newest subscription not in one of the final statuses $2 (canceled,
-- incomplete_expired): one Stripe may still bill (active, trialing, past_due, and also unpaid,
-- incomplete or paused, whose invoices can still be paid); no row: none.
SELECT subscription_id AS id, tier, status
  FROM stripe_subscriptions
 WHERE user_id = $1 AND status <> ALL($2::text[])
 ORDER BY updated_at DESC
 LIMIT 1
