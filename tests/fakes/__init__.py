"""Wire-level fakes of external services used by the tests."""
