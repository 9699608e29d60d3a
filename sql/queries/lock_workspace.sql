-- Locks workspace $1's row for the transaction (caps counted under it); returns its id.
SELECT id FROM workspaces WHERE id = $1 FOR UPDATE
