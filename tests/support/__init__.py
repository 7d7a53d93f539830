"""Helpers shared by the test suite and the scripts (not shipped with the application)."""
