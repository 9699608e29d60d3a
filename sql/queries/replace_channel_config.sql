-- The re-encrypted config $3 of channel $1, written only if its ciphertext is still $2. Returns the id.
UPDATE notification_channels SET config_encrypted = $3 WHERE id = $1 AND config_encrypted = $2 RETURNING id
