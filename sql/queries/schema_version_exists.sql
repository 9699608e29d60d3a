-- True once the migration runner has created schema_version in this database.
SELECT to_regclass('schema_version') IS NOT NULL
