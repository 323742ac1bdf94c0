"""Gmail orchestration: sync, notifications, watches, connecting a mailbox."""
