"""The SAS channel (INT_R03): appointments booked by regulators, sent to SAS's FHIR API
with mutual TLS (our client certificate and key; SAS's certificate checked against the
configured CA bundle). What to send is decided by app/subscriptions/sas_notifier.py."""

from __future__ import annotations

import logging

import requests

from app.config import Settings
from app.storage.repository import Repository
from app.subscriptions.channels import http
from app.subscriptions.channels.base import Result
from app.subscriptions.outbox import Message

log = logging.getLogger(__name__)
SUBSCRIBER = "sas"


class SasChannel:
    name = "sas"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = requests.Session()
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

    def send(self, message: Message) -> Result:
        return http.send(self.session, message, self.settings.outbound_timeout_seconds)

    def health(self, repo: Repository, message: Message, failure: Result | None) -> None:
        # SAS has no subscription resource to mark; a failure is logged by the worker and
        # the message waits in the outbox (parked ones show in `fhir-agenda outbox list`).
        return None

    def close(self) -> None:
        self.session.close()
