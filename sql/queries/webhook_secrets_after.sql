-- Webhooks' encrypted secrets after the id $1, at most $2, in id order: what `ledger byok rotate`
-- re-encrypts.
SELECT id, secret_encrypted, previous_secret_encrypted FROM webhooks WHERE id > $1 ORDER BY id LIMIT $2
