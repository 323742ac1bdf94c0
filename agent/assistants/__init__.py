"""Assistant personas: who the assistant speaks for and how."""
