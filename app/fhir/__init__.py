"""HTTP layer: routes, content negotiation, OperationOutcome, Bundles, CapabilityStatement."""
