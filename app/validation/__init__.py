"""Validation of resources: base-spec structure (fhir.resources), references, profiles."""
