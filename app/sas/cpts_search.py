"""The SAS slot search of the CPTS offer, as a registered search variant.

The individual search plus `_include=Slot:service-type-reference` and
`_include:iterate=HealthcareService:organization`: recognised by those includes (before the
individual variant, which would answer it otherwise), on the individual search's rules
(app/sas/request.py), answered in the sas-cpts-* profiles (app/sas/cpts_answer.py).
"""

from __future__ import annotations

from app.sas.cpts_answer import CptsAnswer
from app.sas.offer_search import SasOfferSearch
from app.sas.request import SAS_INCLUDES, is_sas_search, parse_sas_search
from app.storage.repository import Repository

CPTS_INCLUDES = frozenset({("_include", "Slot:service-type-reference"),
                           ("_include:iterate", "HealthcareService:organization")})


class SasCptsSearch(SasOfferSearch):
    name = "sas-cpts"

    def asks(self, resource_type: str, params: list[tuple[str, str]], from_sas: bool) -> bool:
        return bool(CPTS_INCLUDES & set(params)) and is_sas_search(resource_type, params,
                                                                   from_sas)

    def respond(self, repo: Repository, params: list[tuple[str, str]], strict: bool,
                self_url: str) -> bytes:
        search = parse_sas_search(params, repo.settings, strict, SAS_INCLUDES | CPTS_INCLUDES)
        return CptsAnswer(repo).bundle(search, self_url, repo.settings.public_web_url)
