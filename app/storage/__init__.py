"""Persistence: tables, search index extraction and the resource repository."""
