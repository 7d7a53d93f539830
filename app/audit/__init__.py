"""Audit trail: an AuditEvent for every change and every read of patient or appointment data."""
