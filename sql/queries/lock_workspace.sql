-- Locks workspace $1's row until the transaction ends (not against the rows that reference it):
-- counting what it has and adding one more happen as one step, so caps hold under concurrency.
SELECT id FROM workspaces WHERE id = $1 FOR NO KEY UPDATE
