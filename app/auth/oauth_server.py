"""The built-in OAuth 2 authorisation server (Authlib): client-credentials tokens for
third-party agendas, for deployments without an authorisation server of their own.

- POST /oauth/token   client_credentials, client_secret_basic or client_secret_post;
                      answers a signed JWT access token (RFC 9068 claims)
- GET  /oauth/jwks    the public key that verifies those tokens
- GET  /fhir/.well-known/smart-configuration   SMART discovery (public, no token needed)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from flask import Blueprint, Flask, Response, current_app, jsonify
from joserfc.jwk import KeySet

from app.auth import clients
from app.auth.clients import AUTH_METHODS, GRANT_TYPE, RegisteredClient
from app.auth.tokens import (
    audience,
    check_settings,
    issuer,
    public_jwks,
    signing_algorithm,
    signing_key,
)
from app.config import Settings
from app.db import read_transaction
from app.search.registry import READ_ONLY_TYPES, SUPPORTED_TYPES
from app.state import current_state

oauth = Blueprint("oauth", __name__)


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = sorted(AUTH_METHODS)


class AccessTokens(JWTBearerTokenGenerator):  # type: ignore[misc]
    """JWT access tokens signed with our key, for our FHIR endpoint (aud)."""

    def __init__(self, settings: Settings) -> None:
        key = signing_key(settings.oauth_signing_key)
        super().__init__(issuer(settings), alg=signing_algorithm(key),
                         expires_generator=settings.oauth_token_ttl_seconds)
        self.keys = KeySet([key])
        self.audience = audience(settings)

    def get_jwks(self) -> KeySet:
        return self.keys

    def get_audiences(self, client: Any, user: Any, scope: str) -> str:
        return self.audience


def _active_client(client_id: str) -> RegisteredClient | None:
    # A disabled client is unknown to the token endpoint: invalid_client.
    with read_transaction(current_state().engine) as conn:
        client = clients.find(conn, client_id)
    return client if client is not None and client.disabled_at is None else None


def _no_storage(token: dict[str, Any], request: Any) -> None:
    """JWTs are self-contained: nothing to store (a disabled client's tokens are refused
    by the bearer check, which reads the registry)."""


def token_endpoint(settings: Settings) -> str:
    base = urlsplit(settings.fhir_base_url)
    return f"{base.scheme}://{base.netloc}/oauth/token"


def external_server(settings: Settings) -> bool:
    return bool(settings.oauth_jwks_url or settings.oauth_introspection_url)


def advertised_token_endpoint(settings: Settings) -> str | None:
    """Where clients get tokens: ours, or the external server's when one is configured."""
    return settings.oauth_token_endpoint if external_server(settings) else (
        token_endpoint(settings))


@oauth.post("/oauth/token")
def issue_token() -> Response:
    server: AuthorizationServer = current_app.extensions["oauth_server"]
    return server.create_token_response()  # type: ignore[no-any-return]


@oauth.get("/oauth/jwks")
def jwks() -> Response:
    response = jsonify(public_jwks(signing_key(current_state().settings.oauth_signing_key)))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@oauth.get("/fhir/.well-known/smart-configuration")
def smart_configuration() -> Response:
    settings = current_state().settings
    scopes = ["system/*.read", "system/*.write", "system/*.rs", "system/*.cruds"]
    # Read-only types (AuditEvent) are offered for reading only.
    scopes += [f"system/{kind}.{access}" for kind in sorted(SUPPORTED_TYPES)
               for access in (("rs",) if kind in READ_ONLY_TYPES else ("rs", "cruds"))]
    document: dict[str, Any] = {
        "issuer": issuer(settings),
        "grant_types_supported": [GRANT_TYPE],
        "token_endpoint_auth_methods_supported": sorted(AUTH_METHODS),
        "scopes_supported": scopes,
        "capabilities": ["client-confidential-symmetric", "permission-v1", "permission-v2"],
    }
    token = advertised_token_endpoint(settings)
    if token:
        document["token_endpoint"] = token
    if not external_server(settings):
        document["jwks_uri"] = token_endpoint(settings).removesuffix("/token") + "/jwks"
    response = jsonify(document)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def install_oauth(app: Flask, settings: Settings) -> None:
    check_settings(settings)
    server = AuthorizationServer(app, query_client=_active_client, save_token=_no_storage)
    # With an external authorisation server our tokens would not verify: no grant at all
    # (the endpoint answers unsupported_grant_type).
    if not external_server(settings):
        server.register_grant(ClientCredentials)
        server.register_token_generator("default", AccessTokens(settings))
    app.extensions["oauth_server"] = server
    app.register_blueprint(oauth)
