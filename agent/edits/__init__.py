"""What the user changed in the assistant's drafts, kept per persona so the next drafts follow their style."""
