"""One adapter per API shape the metered engine serves (see ledger/gateway/engine.py)."""
