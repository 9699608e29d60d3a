-- The migration runner's record of applied migrations (not a migration itself: the runner needs
-- it before it can apply the first one); a no-op once it exists.
CREATE TABLE IF NOT EXISTS schema_version (
    version     text PRIMARY KEY,
    description text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp()
)
