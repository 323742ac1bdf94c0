"""Crash harness: real processes on real PostgreSQL, SIGKILLed at chosen and random points."""
