"""Access tokens: the built-in endpoint's signing key, and the verification of bearer tokens
(JWT against a key set, or RFC 7662 introspection)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import ECKey, GuestProtocol, Key, KeySet, RSAKey, import_key
from joserfc.jwt import JWTClaimsRegistry

from app.config import Settings, instance_secret

log = logging.getLogger(__name__)

# Asymmetric only: a shared-secret (HS*) token could be forged by anyone holding the key.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "ES512", "EdDSA")
CURVE_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
LEEWAY_SECONDS = 30  # clock skew tolerated on exp, nbf and iat
# An unknown `kid` refetches the JWKS at most this often: forged kids must not turn us
# into a load generator against the authorisation server.
REFETCH_COOLDOWN_SECONDS = 10.0
GENERATED_KEY_FILE = "oauth_signing_key.pem"
CLAIM_ERRORS = {"iss": "wrong issuer", "aud": "wrong audience",
                "nbf": "the token is not valid yet", "iat": "the token was issued in the future",
                "exp": "malformed expiry"}


class InvalidToken(Exception):
    """The token is malformed, expired, not for us, badly signed or inactive (→ 401)."""


class VerifierUnavailable(Exception):
    """The authorisation server (JWKS or introspection) could not be reached (→ 503)."""


class Verifier(Protocol):
    def claims(self, token: str) -> dict[str, Any]: ...


def builtin_issuer(settings: Settings) -> str:
    base = urlsplit(settings.fhir_base_url)
    return f"{base.scheme}://{base.netloc}/oauth"


def issuer(settings: Settings) -> str:
    return settings.oauth_issuer or builtin_issuer(settings)


def audience(settings: Settings) -> str:
    return settings.oauth_audience or settings.fhir_base_url


# -- the built-in endpoint's key ----------------------------------------------------------

def _generated_pem() -> str:
    return ECKey.generate_key("P-256").as_pem(private=True).decode()


@lru_cache(maxsize=4)
def signing_key(path: str | None) -> RSAKey | ECKey:
    """The private key of the built-in endpoint (RSA or EC PEM), with its thumbprint as kid."""
    pem = (Path(path).read_bytes() if path
           else instance_secret(GENERATED_KEY_FILE, _generated_pem).encode())
    key_type = "RSA" if isinstance(load_pem_private_key(pem, None), rsa.RSAPrivateKey) else "EC"
    key = import_key(pem, key_type)
    assert isinstance(key, RSAKey | ECKey)
    key.ensure_kid()
    return key


def signing_algorithm(key: RSAKey | ECKey) -> str:
    return "RS256" if isinstance(key, RSAKey) else CURVE_ALGORITHMS[key.curve_name]


def public_jwks(key: RSAKey | ECKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False, use="sig", alg=signing_algorithm(key))]}


# -- key sets -----------------------------------------------------------------------------

class RemoteJwks:
    """An authorisation server's JWKS, cached for `ttl` seconds and refetched early when a
    token names a key we do not know (key rotation)."""

    def __init__(self, url: str, ttl: float, timeout: float) -> None:
        self.url, self.ttl, self.timeout = url, ttl, timeout
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def key(self, kid: str | None) -> Key:
        with self._lock:
            if self._keys is None or time.monotonic() - self._fetched_at > self.ttl:
                self._refresh()
            try:
                return self._find(kid)
            except InvalidKeyIdError:
                if time.monotonic() - self._fetched_at < REFETCH_COOLDOWN_SECONDS:
                    raise
            self._refresh()
            return self._find(kid)

    def _find(self, kid: str | None) -> Key:
        assert self._keys is not None
        return self._keys.get_by_kid(kid)

    def _refresh(self) -> None:
        try:
            response = requests.get(self.url, timeout=self.timeout,
                                    headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = KeySet.import_key_set(response.json())
        except (requests.RequestException, ValueError, JoseError) as exc:
            if self._keys is None:
                raise VerifierUnavailable(f"JWKS {self.url}: {exc}") from exc
            # Keep trusting the keys we have rather than refusing every client.
            log.warning("JWKS %s could not be refreshed, keeping the cached keys: %s",
                        self.url, exc)
        else:
            self._keys = keys
        self._fetched_at = time.monotonic()


# -- verifiers ----------------------------------------------------------------------------

def _validate(claims: dict[str, Any], registry: JWTClaimsRegistry) -> dict[str, Any]:
    try:
        registry.validate(claims)
    except ExpiredTokenError as exc:
        raise InvalidToken("the token has expired") from exc
    except MissingClaimError as exc:
        raise InvalidToken(f"missing claim {exc.claim}") from exc
    except InvalidClaimError as exc:
        raise InvalidToken(CLAIM_ERRORS.get(exc.claim, f"invalid claim {exc.claim}")) from exc
    return claims


class JwtVerifier:
    """Signed JWT access tokens: signature, then iss, aud, exp, nbf and iat."""

    def __init__(self, key: Callable[[str | None], Key], expected_issuer: str,
                 expected_audience: str) -> None:
        self._key = key
        self._registry = JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS, iss={"essential": True, "value": expected_issuer},
            aud={"essential": True, "value": expected_audience}, exp={"essential": True})

    def _resolve(self, token: GuestProtocol) -> Key:
        kid = token.headers().get("kid")
        try:
            return self._key(kid if isinstance(kid, str) else None)
        except InvalidKeyIdError as exc:
            raise InvalidToken("unknown signing key") from exc

    def claims(self, token: str) -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, self._resolve, algorithms=ALGORITHMS)
        except BadSignatureError as exc:
            raise InvalidToken("bad signature") from exc
        except (JoseError, ValueError, TypeError) as exc:  # not a JWS, bad JSON, alg
            raise InvalidToken("malformed token") from exc
        return _validate(decoded.claims, self._registry)


class IntrospectionVerifier:
    """RFC 7662: the authorisation server says whether the token is active, and for whom."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oauth_introspection_url
        self.url = settings.oauth_introspection_url
        self.timeout = settings.outbound_timeout_seconds
        credentials = (settings.oauth_introspection_client_id,
                       settings.oauth_introspection_client_secret)
        self.auth = credentials if all(credentials) else None
        # The answer is the server's own: iss is only compared when explicitly configured.
        expected: dict[str, Any] = {"aud": {"value": audience(settings)}}
        if settings.oauth_issuer:
            expected["iss"] = {"value": settings.oauth_issuer}
        self._registry = JWTClaimsRegistry(leeway=LEEWAY_SECONDS, **expected)

    def claims(self, token: str) -> dict[str, Any]:
        try:
            response = requests.post(
                self.url, data={"token": token, "token_type_hint": "access_token"},
                auth=self.auth, timeout=self.timeout, headers={"Accept": "application/json"})
            response.raise_for_status()
            answer = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise VerifierUnavailable(f"introspection {self.url}: {exc}") from exc
        if not isinstance(answer, dict) or answer.get("active") is not True:
            raise InvalidToken("the token is not active")
        return _validate(answer, self._registry)


@lru_cache(maxsize=16)
def verifier_for(settings: Settings) -> Verifier:
    """One verifier per configuration, so that its JWKS cache is shared by requests."""
    if settings.oauth_introspection_url:
        return IntrospectionVerifier(settings)
    if settings.oauth_jwks_url:
        jwks = RemoteJwks(settings.oauth_jwks_url, settings.oauth_jwks_cache_seconds,
                          settings.outbound_timeout_seconds)
        return JwtVerifier(jwks.key, issuer(settings), audience(settings))
    own = KeySet([signing_key(settings.oauth_signing_key)])
    return JwtVerifier(own.get_by_kid, issuer(settings), audience(settings))


def check_settings(settings: Settings) -> None:
    """Refuse, at start-up, a configuration that could only refuse every token."""
    if settings.oauth_jwks_url and not settings.oauth_issuer and not settings.development:
        raise ValueError("OAUTH_JWKS_URL is set without OAUTH_ISSUER: tokens of an external "
                         "authorisation server are only accepted from its declared issuer")
