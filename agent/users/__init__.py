"""Users: the owners of every row."""
