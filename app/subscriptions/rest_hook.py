"""FHIR R4 Subscriptions (rest-hook) for third-party agendas.

`SubscriptionRules` checks Subscription resources when they are written and activates them.
`SubscriptionMatcher` runs, inside every write transaction, each live Subscription's
criteria against the changed resources with the search engine itself (criteria + `_id`),
and queues a notification for each match in the outbox: once the unit of work has written
everything, one query per Subscription watching a type written (the live Subscriptions are
read once per unit), whatever the number of resources a Bundle changed. R4 has no handshake
or heartbeat (they arrive with R4B/R5 topic-based subscriptions), so none is sent.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from app.clock import format_instant, utc_now
from app.outcome import FhirError, Issue, Unprocessable
from app.search.api import check_criteria, find, find_ids, one_of
from app.search.dates import InvalidDate, parse_range
from app.search.registry import SUPPORTED_TYPES
from app.search.sql import SqlContext
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.references import chunks
from app.storage.repository import Repository
from app.subscriptions import outbox
from app.subscriptions.channels.rest_hook import PREFIX

log = logging.getLogger(__name__)
PAYLOADS = {"application/fhir+json", "application/json", "application/json+fhir"}

Resource = dict[str, Any]


def split_criteria(criteria: str) -> tuple[str, list[tuple[str, str]]]:
    resource_type, _, query = criteria.strip().partition("?")
    return resource_type, parse_qsl(query, keep_blank_values=True)


def _issues(subscription: Resource) -> list[Issue]:
    issues = []
    channel = subscription.get("channel") or {}
    if channel.get("type") != "rest-hook":
        issues.append(Issue("not-supported", "Subscription.channel.type: only rest-hook is "
                            "supported", expression=["Subscription.channel.type"]))
    endpoint = urlsplit(str(channel.get("endpoint") or ""))
    if endpoint.scheme not in ("https", "http") or not endpoint.hostname:
        issues.append(Issue("required", "Subscription.channel.endpoint: an http(s) URL is "
                            "required", expression=["Subscription.channel.endpoint"]))
    payload = channel.get("payload")
    if payload is not None and payload.split(";")[0].strip() not in PAYLOADS:
        issues.append(Issue("not-supported", f"Subscription.channel.payload: '{payload}' is not "
                            "supported (application/fhir+json or none)",
                            expression=["Subscription.channel.payload"]))
    for index, header in enumerate(channel.get("header") or []):
        where = f"Subscription.channel.header[{index}]"
        if "\r" in header or "\n" in header:
            issues.append(Issue("value", f"{where}: a header cannot contain a line break",
                                expression=[where]))
        elif ":" not in header or not header.partition(":")[0].strip():
            issues.append(Issue("value", f"{where}: expected 'Name: value'",
                                expression=[where]))
    resource_type, params = split_criteria(str(subscription.get("criteria") or ""))
    if resource_type not in SUPPORTED_TYPES or resource_type == "Subscription":
        issues.append(Issue("value", f"Subscription.criteria: '{resource_type}' is not a "
                            "resource type this server notifies about",
                            expression=["Subscription.criteria"]))
    else:
        try:
            # Building the SQL checks the values too (dates…), not just the parameter names.
            check_criteria(resource_type, params, SqlContext("Europe/Paris", ""))
        except FhirError as error:
            issues.append(Issue("value", f"Subscription.criteria: {error}",
                                expression=["Subscription.criteria"]))
    return issues


class SubscriptionRules(Interceptor):
    def before_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type != "Subscription" or event.resource is None:
            return
        issues = _issues(event.resource)
        if issues:
            raise Unprocessable("This Subscription cannot be served", issues=issues)
        if event.resource.get("status") == "requested":
            event.resource["status"] = "active"  # accepted: the server activates it

    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        """A Subscription deleted or turned off takes its undelivered messages with it."""
        if event.resource_type != "Subscription":
            return
        if event.resource is None or event.resource.get("status") == "off":
            outbox.drop_pending(repo.conn, f"{PREFIX}{event.resource_id}",
                                "the subscription was turned off or deleted")


LIVE, CHANGED = "subscriptions:live", "subscriptions:changed"


def _live_subscriptions(repo: Repository) -> dict[str, list[Resource]]:
    """Subscriptions to notify, by the resource type they watch: active ones, and those in
    error (R4: the server keeps trying; what changes meanwhile is queued and goes out once
    the endpoint is back). Read once per unit of work, again after it wrote a Subscription."""
    held: list[dict[str, list[Resource]] | None] = repo.memo(LIVE, lambda: [None])
    if held[0] is None:
        by_type: dict[str, list[Resource]] = {}
        for stored in find(repo.conn, "Subscription", [("status", "active,error")]):
            subscription = stored.as_dict()
            watched, _ = split_criteria(str(subscription.get("criteria") or ""))
            by_type.setdefault(watched, []).append(subscription)
        held[0] = by_type
    return held[0]


def _instant_passed(end: str, now: str) -> bool:
    try:
        return parse_range(end, "UTC")[1] < parse_range(now, "UTC")[0]
    except InvalidDate:
        return False


def _headers(subscription: Resource) -> dict[str, str]:
    headers = {}
    for line in (subscription.get("channel") or {}).get("header") or []:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return headers


class SubscriptionMatcher(Interceptor):
    def before_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource is not None and event.resource_type != "Subscription":
            # Read before the unit's first write is staged: the read then has nothing to
            # flush, and the staged rows go in one round trip with the rest.
            _live_subscriptions(repo)

    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type == "Subscription":
            repo.memo(LIVE, lambda: [None])[0] = None  # read them again
            return
        if event.resource is None or event.stored is None:
            return
        repo.defer_batch(CHANGED, event, lambda events: self._match(repo, events))

    def _match(self, repo: Repository, events: list[WriteEvent]) -> None:
        live = _live_subscriptions(repo)
        now = format_instant(utc_now())
        context = SqlContext(repo.settings.default_timezone, repo.settings.fhir_base_url)
        by_type: dict[str, list[WriteEvent]] = {}
        for event in events:
            by_type.setdefault(event.resource_type, []).append(event)
        for resource_type, written in by_type.items():
            for subscription in live.get(resource_type, []):
                end = subscription.get("end")
                if end and _instant_passed(end, now):
                    continue  # R4: past its end the subscription is off
                _, params = split_criteria(subscription.get("criteria", ""))
                try:
                    matched: set[str] = set()
                    for chunk in chunks({e.resource_id for e in written}):
                        matched |= find_ids(repo.conn, resource_type,
                                            [*params, ("_id", one_of(chunk))], context=context)
                except FhirError as error:
                    # A subscription never blocks the change it watches.
                    log.warning("Subscription/%s criteria failed: %s", subscription.get("id"),
                                error)
                    continue
                for event in written:
                    if event.resource_id in matched:
                        self._queue(repo, subscription, event)

    @staticmethod
    def _queue(repo: Repository, subscription: Resource, event: WriteEvent) -> None:
        assert event.stored is not None
        channel = subscription.get("channel") or {}
        endpoint = str(channel["endpoint"]).rstrip("/")
        headers = _headers(subscription)
        common = {"subscriber": f"{PREFIX}{subscription['id']}",
                  "ordering_key": f"{PREFIX}{subscription['id']}:"
                                  f"{event.resource_type}/{event.resource_id}",
                  "resource_type": event.resource_type, "resource_id": event.resource_id,
                  "version": event.stored.version}
        if channel.get("payload"):
            # R4 rest-hook with payload: the resource is PUT at [endpoint]/[type]/[id].
            headers.setdefault("Content-Type", channel["payload"])
            parts = urlsplit(str(channel["endpoint"]))
            url = urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/"
                                                 f"{event.resource_type}/{event.resource_id}"))
            outbox.enqueue(repo.conn, method="PUT", supersede=True, headers=headers,
                           url=url, body=event.stored.content, **common)
        else:
            # Without payload: an empty POST telling the client to come and search.
            outbox.enqueue(repo.conn, method="POST", url=endpoint, headers=headers,
                           body=None, **common)
