"""The credit ledger: SQL functions own the money; this package calls them."""
