-- The billing contacts of workspace $1 become exactly the members $2 (others stop being ones).
-- Returns the members' ids now billing contacts; an id that is no member is not among them.
UPDATE workspace_members SET billing_contact = (user_id = ANY ($2::uuid[]))
 WHERE workspace_id = $1 AND billing_contact <> (user_id = ANY ($2::uuid[]))
RETURNING user_id
