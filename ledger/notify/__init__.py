"""Telling people: the outbox of events (written by SQL triggers in the transaction that caused
them), signed outgoing webhooks, and emails to a workspace's owners and billing contacts."""
