"""How to authenticate, as declared in the CapabilityStatement (rest.security)."""

from __future__ import annotations

from typing import Any

from app.auth.oauth_server import advertised_token_endpoint
from app.config import Settings

SERVICES = "http://terminology.hl7.org/CodeSystem/restful-security-service"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def security_statement(settings: Settings) -> dict[str, Any] | None:
    if settings.development:
        return None  # nothing to declare: the checks are off
    statement: dict[str, Any] = {
        "cors": False,
        "service": [{"coding": [{"system": SERVICES, "code": "SMART-on-FHIR"},
                                {"system": SERVICES, "code": "Certificates"}]}],
        "description": "OAuth 2 bearer tokens with SMART system scopes (client credentials; "
                       "see .well-known/smart-configuration), or the SAS platform's "
                       "IGC-Santé client certificate (mutual TLS) for the SAS slot search "
                       "and regulator accounts.",
    }
    token = advertised_token_endpoint(settings)
    if token:
        statement["extension"] = [{"url": OAUTH_URIS,
                                   "extension": [{"url": "token", "valueUri": token}]}]
    return statement
