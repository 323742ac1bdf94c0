"""Email Assistant: domain, storage and integrations (no web framework here)."""
