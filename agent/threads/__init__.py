"""Outreach threads: one conversation with one recipient."""
