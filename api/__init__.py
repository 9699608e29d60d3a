"""The HTTP service: a Starlette app over the ledger."""
