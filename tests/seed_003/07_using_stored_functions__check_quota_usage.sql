-- seed 003, "Using Stored Functions" / "Check Quota Usage", verbatim.
SELECT get_quota_usage_percentage('USER_UUID'::uuid);
-- Returns: 45.67 (percentage)
