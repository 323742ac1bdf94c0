"""Outreach statistics for the dashboard."""
