-- Notification channels' encrypted configs after the id $1, at most $2, in id order: what
-- `ledger byok rotate` re-encrypts.
SELECT id, config_encrypted FROM notification_channels WHERE id > $1 ORDER BY id LIMIT $2
