"""Addresses never to email again."""
