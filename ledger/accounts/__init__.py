"""Workspaces, people, members and roles, invitations, sessions, admin keys and the audit log."""
