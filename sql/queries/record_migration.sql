-- Records one migration as applied, in the transaction that applied it.
INSERT INTO schema_version (version, description, checksum) VALUES ($1, $2, $3)
