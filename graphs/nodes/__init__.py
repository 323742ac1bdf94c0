"""Graph nodes: small async functions, one concern each."""
