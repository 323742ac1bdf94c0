"""Safe sending: windows, daily caps, spacing, the send queue and the bounce-rate pause."""
