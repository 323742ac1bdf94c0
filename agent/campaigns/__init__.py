"""Campaigns: one bulk start (a persona and many threads), its funnel, its queue and its reply rate."""
