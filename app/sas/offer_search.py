"""What the SAS offers' search variants share: they are recognised only for the SAS
platform's principal, check its right to search once, and answer from the SAS projections.

Each offer (individual, CPTS, SOS Médecins) says which requests are its own (`asks`) and how
it answers them (`respond`); registration stays in app/__init__.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from app.auth import access
from app.auth.context import current_principal
from app.storage.repository import Repository


class SasOfferSearch(ABC):
    name: str
    single_statement = True

    @abstractmethod
    def asks(self, resource_type: str, params: list[tuple[str, str]], from_sas: bool) -> bool:
        """Whether this request is this offer's search."""

    @abstractmethod
    def respond(self, repo: Repository, params: list[tuple[str, str]], strict: bool,
                self_url: str) -> bytes:
        """The offer's searchset, serialised."""

    def recognises(self, resource_type: str, params: list[tuple[str, str]]) -> bool:
        principal = current_principal.get()
        return self.asks(resource_type, params, principal is not None and principal.is_sas)

    def answer(self, repo: Repository, resource_type: str, params: list[tuple[str, str]], *,
               strict: bool, self_url: str) -> bytes:
        access.sas_search()
        return self.respond(repo, params, strict, self_url)
