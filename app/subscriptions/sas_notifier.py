"""The SAS notifier: a built-in subscriber to appointments booked by regulators (INT_R03).

It only decides *what* to send; the outbox and the worker deliver it like any Subscription
notification. First announcement: POST [sas]/Appointment (retried as a conditional PUT so
that a retry cannot create twice); every later change: PUT [sas]/Appointment?identifier=….
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from app.sas.appointments import sas_appointment, technical_id
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.repository import Repository
from app.subscriptions import outbox
from app.subscriptions.channels.sas import SUBSCRIBER

HEADERS = {"Content-Type": "application/json+fhir; charset=utf-8",
           "Accept": "application/json+fhir"}


class SasNotifier(Interceptor):
    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        settings = repo.settings
        if event.resource_type != "Appointment" or not settings.sas_base_url or (
                event.stored is None):
            return
        key = f"{SUBSCRIBER}:Appointment/{event.resource_id}"
        announced = outbox.has_history(repo.conn, key)
        current = event.resource
        if current is None:  # a deleted appointment is a cancelled one for SAS
            if not announced or event.previous is None:
                return
            current = {**event.previous.as_dict(), "status": "cancelled"}
        system = settings.local_identifier_system + "/appointment"
        shaped = sas_appointment(repo.conn, current, settings.fhir_base_url, system,
                                 announced=announced)
        if shaped is None:
            return
        body = orjson.dumps(shaped).decode()
        value = technical_id(event.resource_id, settings.fhir_base_url)
        conditional = (f"{settings.sas_base_url}/Appointment?identifier="
                       f"{quote(f'{system}|{value}', safe=':/')}")
        common = {"subscriber": SUBSCRIBER, "ordering_key": key,
                  "resource_type": "Appointment", "resource_id": event.resource_id,
                  "version": event.stored.version, "headers": HEADERS, "body": body}
        if not announced:
            outbox.enqueue(repo.conn, method="POST", url=f"{settings.sas_base_url}/Appointment",
                           retry=("PUT", conditional), **common)
        elif outbox.last_body(repo.conn, key) != body:
            outbox.enqueue(repo.conn, method="PUT", url=conditional, supersede=True, **common)
