"""`fhir-agenda sas-selftest`: what a vendor runs against a deployment before the ANS
acceptance and after every deployment (the checks of the ANS SAS test kit that a client
can run on its own: transport, metadata, the searches and their rules, the booking link,
a regulator account round trip)."""
