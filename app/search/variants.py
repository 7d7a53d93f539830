"""Search variants: searches answered in a shape of their own, registered as plug-ins.

The SAS slot searches are: the individual offer (INT_R01), the CPTS offer and the SOS
Médecins offer (app/sas/*_search.py). A variant recognises its request (resource type,
parameters, and whoever asks, which it finds itself) and answers it as the bytes of a
Bundle. The interactions layer asks the registered variants before running an ordinary
search, for REST calls and Bundle entries alike; the application registers them once
(app/__init__.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from app.storage.repository import Repository


class SearchVariant(Protocol):
    name: str
    # Answered by one SQL statement: a REST call may then read without BEGIN/COMMIT.
    single_statement: bool

    def recognises(self, resource_type: str, params: list[tuple[str, str]]) -> bool: ...

    def answer(self, repo: Repository, resource_type: str, params: list[tuple[str, str]], *,
               strict: bool, self_url: str) -> bytes:
        """The searchset Bundle, serialised; raises a 4xx FhirError for a bad request."""
        ...


def recognised(variants: Sequence[SearchVariant], resource_type: str,
               params: list[tuple[str, str]]) -> SearchVariant | None:
    return next((v for v in variants if v.recognises(resource_type, params)), None)
