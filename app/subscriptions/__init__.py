"""Notifications: transactional outbox, SAS notifier, FHIR R4 Subscriptions, delivery worker."""
