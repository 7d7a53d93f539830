"""Single sign-on of regulators: Authlib's Flask OpenID Connect client.

Authlib does the protocol: discovery, authorization code with PKCE (S256), `state` and
`nonce` kept in the session cookie, the code exchange with the configured client
authentication, the ID token's signature checked against the provider's JWKS and its
claims (iss, aud, exp, nonce, at_hash), the UserInfo call, and the RP-initiated logout URL.
What is ours: the settings (Pro Santé Connect's scopes and `acr_values`), and which claims
name the person (`identity_of`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from flask import Flask, current_app
from joserfc.errors import JoseError

from app.accounts.identity import Identity
from app.config import Settings

PROVIDER = "sso"
EXTENSION = "authlib.integrations.flask_client"
# Everything that means "the provider's answer cannot be trusted or was not received".
SSO_ERRORS = (AuthlibBaseError, JoseError, requests.RequestException, ValueError, KeyError)


class SsoMisconfigured(RuntimeError):
    """The SSO settings are incomplete (raised at start-up, not on a regulator's click)."""


def install_sso(app: Flask, settings: Settings) -> None:
    """Register the provider when OIDC_DISCOVERY_URL is set."""
    if not settings.oidc_discovery_url:
        return
    if not settings.oidc_client_id:
        raise SsoMisconfigured("OIDC_DISCOVERY_URL is set but OIDC_CLIENT_ID is not")
    method = settings.oidc_client_auth_method
    secret: Any = settings.oidc_client_secret
    auth_methods = None
    if method == "private_key_jwt":
        if not settings.oidc_private_key:
            raise SsoMisconfigured("OIDC_CLIENT_AUTH_METHOD=private_key_jwt needs "
                                   "OIDC_PRIVATE_KEY (a PEM file)")
        secret = Path(settings.oidc_private_key).read_text()
        auth_methods = [PrivateKeyJWT()]  # audience: the token endpoint called
    elif not secret:
        raise SsoMisconfigured(f"OIDC_CLIENT_AUTH_METHOD={method} needs OIDC_CLIENT_SECRET")
    oauth = OAuth(app)
    oauth.register(
        PROVIDER, client_id=settings.oidc_client_id, client_secret=secret,
        server_metadata_url=settings.oidc_discovery_url, client_auth_methods=auth_methods,
        authorize_params={"acr_values": settings.oidc_acr_values}
        if settings.oidc_acr_values else None,
        client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256",
                       "token_endpoint_auth_method": method,
                       "default_timeout": settings.outbound_timeout_seconds})


def sso_client() -> FlaskOAuth2App | None:
    """The provider's client, or None when SSO is not configured."""
    oauth: OAuth | None = current_app.extensions.get(EXTENSION)
    return oauth.create_client(PROVIDER) if oauth is not None else None


def provider_origins() -> list[str]:
    """Where our forms may lead the browser through the provider (CSP `form-action`):
    logging out redirects there, and so may a sign-in reached after a form. The discovery
    URL's origin, and those of its endpoints once the document has been read."""
    client = sso_client()
    if client is None:
        return []
    urls = [current_app.extensions["agenda"].settings.oidc_discovery_url or "",
            *(client.server_metadata.get(key) or "" for key in
              ("authorization_endpoint", "end_session_endpoint"))]
    origins = [f"{p.scheme}://{p.netloc}" for p in map(urlsplit, urls) if p.scheme and p.netloc]
    return list(dict.fromkeys(origins))


def id_token_rules(client: FlaskOAuth2App, settings: Settings) -> dict[str, Any]:
    """What the ID token's claims must say beyond Authlib's own checks: our provider as
    `iss`, and the level of assurance asked for (`acr`, e.g. eidas1) when one was asked."""
    rules: dict[str, Any] = {"iss": {"essential": True,
                                     "values": [client.load_server_metadata()["issuer"]]}}
    if settings.oidc_acr_values:
        rules["acr"] = {"essential": True, "values": settings.oidc_acr_values.split()}
    return rules


def _text(claims: dict[str, Any], name: str | None) -> str | None:
    value = claims.get(name) if name else None
    return str(value).strip() or None if isinstance(value, (str, int)) else None


def identity_of(userinfo: dict[str, Any], id_token_claims: dict[str, Any],
                settings: Settings) -> Identity:
    """The person, from the UserInfo answer (PSC puts its claims there), falling back on
    the ID token's claims."""
    if userinfo.get("sub") != id_token_claims.get("sub"):
        # OpenID Connect Core 5.3.2: a UserInfo answer about someone else is not used.
        raise ValueError("the UserInfo sub differs from the ID token's")
    claims = {**id_token_claims, **userinfo}
    return Identity(national_id=_text(claims, settings.oidc_national_id_claim),
                    technical_id=_text(claims, settings.oidc_technical_id_claim),
                    family=_text(claims, "family_name"), given=_text(claims, "given_name"))
