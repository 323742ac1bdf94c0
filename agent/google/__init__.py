"""Google: sign-in, the Gmail transport and inbound sync (push, pull, polling)."""
