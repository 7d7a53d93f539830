"""The SAS channel (INT_R03): appointments booked by regulators, sent to SAS's FHIR API
with mutual TLS (our client certificate and key; SAS's certificate checked against the
configured CA bundle). What to send is decided by app/subscriptions/sas_notifier.py."""

from __future__ import annotations

from app.config import Settings
from app.subscriptions.channels.http import HttpChannel

SUBSCRIBER = "sas"


class SasChannel(HttpChannel):
    """SAS has no subscription resource whose health to keep: a failure is logged by the
    worker and the message waits in the outbox (parked ones: `fhir-agenda outbox list`)."""

    name = "sas"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # Only our settings decide whom we trust for SAS: REQUESTS_CA_BUNDLE and friends in
        # the environment would otherwise silently replace the configured CA bundle.
        self.session.trust_env = False
        if settings.sas_client_cert:
            self.session.cert = ((settings.sas_client_cert, settings.sas_client_key)
                                 if settings.sas_client_key else settings.sas_client_cert)
        if settings.sas_ca_bundle:
            self.session.verify = settings.sas_ca_bundle

    def owns(self, subscriber: str) -> bool:
        return subscriber == SUBSCRIBER
