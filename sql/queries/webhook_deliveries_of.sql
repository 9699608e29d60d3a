-- The delivery attempts of webhook $2 of workspace $1, newest first, before the id $3 (NULL: from
-- the newest), at most $4.
SELECT id, webhook_id, message_id, event_id, event_type, attempt_number, request_headers, request_body,
       response_status, response_headers, response_body, latency_ms, success, error_message, next_retry_at,
       created_at
  FROM webhook_deliveries
 WHERE workspace_id = $1 AND webhook_id = $2 AND ($3::bigint IS NULL OR id < $3)
 ORDER BY id DESC
 LIMIT $4
