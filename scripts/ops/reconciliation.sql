-- Broken ledger invariants; a healthy ledger returns no rows: balances that are not the sum of
-- their transactions, balance_after chains that break, held credits that are not the open holds.
-- Variables: none
SELECT user_id, problem, expected, actual, transaction_id
FROM ledger_reconciliation
ORDER BY user_id, problem, transaction_id;
