"""The audit trail: every decision, action and ignored event of a thread."""
