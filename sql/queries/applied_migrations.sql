-- Every applied migration: version and the checksum its file had when it was applied.
SELECT version, checksum FROM schema_version
