-- The notification settings of workspace $1: its low-balance threshold and what is left to spend
-- now (NULL: no limit), and its billing contacts.
SELECT c.low_balance_threshold, ledger_spendable(c) AS spendable,
       coalesce((SELECT array_agg(m.user_id ORDER BY m.user_id) FROM workspace_members m
                  WHERE m.workspace_id = $1 AND m.billing_contact), '{}') AS billing_contacts
  FROM user_credits c
 WHERE c.user_id = $1
