-- Email $1 was accepted by the mail server.
UPDATE notification_emails SET status = 'sent', sent_at = now(), last_error = NULL WHERE id = $1
