"""OAuth 2 for third-party agendas, through HTTP in the production profile: the client
registry command, the built-in client-credentials endpoint, bearer tokens on /fhir (built-in
key, an external JWKS with key rotation, RFC 7662 introspection), scopes and restrictions.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey
from sqlalchemy import Engine

from app import create_app
from app.auth import tokens
from app.config import Settings
from tests.conftest import TEST_BASE_URL
from tests.factories import FHIR_JSON, body
from tests.sas_data import load

Resource = dict[str, Any]
BUILTIN_ISSUER = "http://localhost/oauth"
EXTERNAL_ISSUER = "https://idp.example/realms/agendas"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
DUPONT_RPPS, DURAND_RPPS = "10000000101", "10000000119"


# -- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RSAKey]:
    """The built-in endpoint's signing key, as an operator would give it (PEM file)."""
    key = RSAKey.generate_key(2048)
    path = tmp_path_factory.mktemp("oauth") / "signing.pem"
    path.write_bytes(key.as_pem(private=True))
    return path, key


def production_app(engine: Engine, database_url: str, **settings: Any) -> Flask:
    flask_app = create_app(Settings.from_env(
        security_profile="production", database_url=database_url,
        fhir_base_url=TEST_BASE_URL, **settings), engine=engine)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def agendas(app: Flask) -> None:
    """Two practitioners (Dupont, Durand), each with a schedule, a slot and an appointment;
    loaded in the development profile of the `app` fixture, which also empties the tables."""
    load(app.test_client(), [resource for who, rpps in (("dupont", DUPONT_RPPS),
                                                        ("durand", DURAND_RPPS))
                             for resource in _agenda(who, rpps)])


def _agenda(who: str, rpps: str) -> list[Resource]:
    return [
        {"resourceType": "Practitioner", "id": who, "active": True,
         "identifier": [{"system": IDNPS, "value": rpps}], "name": [{"family": who.title()}]},
        {"resourceType": "Schedule", "id": f"sch-{who}", "active": True,
         "actor": [{"reference": f"Practitioner/{who}"}]},
        {"resourceType": "Slot", "id": f"slot-{who}", "status": "busy",
         "schedule": {"reference": f"Schedule/sch-{who}"},
         "start": "2030-03-10T09:00:00+01:00", "end": "2030-03-10T09:20:00+01:00"},
        {"resourceType": "Patient", "id": f"patient-{who}", "name": [{"family": "Patient"}]},
        {"resourceType": "Appointment", "id": f"appt-{who}", "status": "booked",
         "start": "2030-03-10T09:00:00+01:00", "end": "2030-03-10T09:20:00+01:00",
         "slot": [{"reference": f"Slot/slot-{who}"}],
         "participant": [{"actor": {"reference": f"Practitioner/{who}"}, "status": "accepted"},
                         {"actor": {"reference": f"Patient/patient-{who}"},
                          "status": "accepted"}]},
    ]


def new(who: str, index: int) -> Resource:
    """One of `who`'s agenda resources, without its id (for a create)."""
    resource = _agenda(who, DUPONT_RPPS)[index]
    return {key: value for key, value in resource.items() if key != "id"}


@pytest.fixture
def secured(agendas: None, engine: Engine, database_url: str,
            rsa_key: tuple[Path, RSAKey]) -> Flask:
    return production_app(engine, database_url, oauth_signing_key=str(rsa_key[0]))


@dataclass
class FakeAuthorisationServer:
    """A tiny real HTTP server: GET /jwks serves `jwks`; POST /introspect answers
    `introspection[token]` (inactive for unknown tokens) and records the requests."""

    url: str = ""
    jwks: Resource = field(default_factory=lambda: {"keys": []})
    introspection: dict[str, Resource] = field(default_factory=dict)
    jwks_fetches: int = 0
    introspected: list[tuple[str | None, str]] = field(default_factory=list)
    down: bool = False


@pytest.fixture
def idp() -> Iterator[FakeAuthorisationServer]:
    fake = FakeAuthorisationServer()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, document: Resource) -> None:
            if fake.down:
                self.send_error(503)
                return
            data = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            fake.jwks_fetches += 1
            self._answer(fake.jwks)

        def do_POST(self) -> None:  # noqa: N802
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            token = form["token"][0]
            fake.introspected.append((self.headers.get("Authorization"), token))
            self._answer(fake.introspection.get(token, {"active": False}))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


# -- helpers ----------------------------------------------------------------------------------

def register(app: Flask, *args: str) -> tuple[str, str]:
    result = app.test_cli_runner().invoke(args=["oauth", "register-client", *args])
    assert result.exit_code == 0, result.output
    fields = dict(line.split(":", 1) for line in result.output.splitlines() if ": " in line)
    assert fields["token_endpoint"].strip() == "http://localhost/oauth/token"
    return fields["client_id"].strip(), fields["client_secret"].strip()


def request_token(app: Flask, client_id: str, secret: str, scope: str | None = None,
                  *, post: bool = False) -> Any:
    form = {"grant_type": "client_credentials"} | ({"scope": scope} if scope else {})
    if post:
        return app.test_client().post("/oauth/token", data=form | {
            "client_id": client_id, "client_secret": secret})
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return app.test_client().post("/oauth/token", data=form,
                                  headers={"Authorization": f"Basic {basic}"})


def access_token(app: Flask, *register_args: str, scope: str | None = None) -> str:
    client_id, secret = register(app, "--name", "Agenda X", *register_args)
    response = request_token(app, client_id, secret, scope)
    assert response.status_code == 200, response.json
    return str(response.json["access_token"])


def call(app: Flask, token: str | None, method: str, path: str, resource: Any = None) -> Any:
    headers = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return app.test_client().open(path, method=method, json=resource, headers=headers)


def sign(key: RSAKey | ECKey, alg: str = "RS256", kid: str | None = None,
         **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": BUILTIN_ISSUER, "aud": TEST_BASE_URL, "client_id": "agenda-x",
               "scope": "system/*.rs", "iat": now, "exp": now + 300} | claims
    header = {"alg": alg, "kid": kid or key.thumbprint()}
    return jwt.encode(header, {k: v for k, v in payload.items() if v is not None}, key)


def refused(response: Any, status: int, error: str | None = None) -> str:
    outcome = body(response)
    assert response.status_code == status, outcome
    assert outcome["resourceType"] == "OperationOutcome"
    challenge = str(response.headers.get("WWW-Authenticate", ""))
    assert challenge.startswith('Bearer realm="fhir-agenda"'), challenge
    if error:
        assert f'error="{error}"' in challenge, challenge
    return challenge


def ids(response: Any) -> set[str]:
    result = body(response)
    assert response.status_code == 200, result
    return {e["resource"]["id"] for e in result.get("entry", [])}


# -- the client registry command ----------------------------------------------------------------

def test_register_list_and_disable_commands(secured: Flask) -> None:
    client_id, secret = register(secured, "--name", "Agenda Dupont", "--scope",
                                 "system/Slot.rs system/Appointment.cruds",
                                 "--practitioner", DUPONT_RPPS)
    runner = secured.test_cli_runner()
    listed = runner.invoke(args=["oauth", "list"]).output
    assert client_id in listed and "Agenda Dupont" in listed and "Practitioner/dupont" in listed
    assert secret not in listed  # only its hash is kept
    assert runner.invoke(args=["oauth", "disable", client_id]).exit_code == 0
    assert "disabled" in runner.invoke(args=["oauth", "list"]).output
    assert runner.invoke(args=["oauth", "disable", client_id]).exit_code != 0


@pytest.mark.parametrize("args, message", [
    (["--scope", "system/Slot.rs", "--practitioner", "10000000999"], "is not known"),
    (["--scope", "system/Slot.rs", "--organization", "nowhere"], "Organization/nowhere"),
    (["--scope", "openid profile"], "Unknown or missing scopes"),
])
def test_register_refuses_unknown_practitioners_organisations_and_scopes(
        secured: Flask, args: list[str], message: str) -> None:
    result = secured.test_cli_runner().invoke(
        args=["oauth", "register-client", "--name", "X", *args])
    assert result.exit_code != 0 and message in result.output, result.output
    assert "No OAuth clients" in secured.test_cli_runner().invoke(args=["oauth", "list"]).output


# -- the token endpoint -------------------------------------------------------------------------

def test_token_is_a_signed_jwt_for_our_audience(secured: Flask,
                                                rsa_key: tuple[Path, RSAKey]) -> None:
    client_id, secret = register(secured, "--name", "X", "--scope", "system/Slot.rs")
    response = request_token(secured, client_id, secret)
    answer = response.json
    assert response.status_code == 200, answer
    assert response.headers["Cache-Control"] == "no-store"
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 300
    assert answer["scope"] == "system/Slot.rs"  # nothing requested: everything allowed
    jwks = secured.test_client().get("/oauth/jwks").json
    assert jwks["keys"][0]["kid"] == rsa_key[1].thumbprint() and "d" not in jwks["keys"][0]
    decoded = jwt.decode(answer["access_token"], RSAKey.import_key(jwks["keys"][0]))
    assert decoded.header == {"alg": "RS256", "typ": "at+jwt", "kid": rsa_key[1].thumbprint()}
    claims = decoded.claims
    assert claims["iss"] == BUILTIN_ISSUER and claims["aud"] == TEST_BASE_URL
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"]
    assert request_token(secured, client_id, secret, post=True).status_code == 200


def test_token_endpoint_refuses_bad_credentials_and_disabled_clients(secured: Flask) -> None:
    client_id, secret = register(secured, "--name", "X", "--scope", "system/Slot.rs")
    for who, password in ((client_id, secret + "x"), ("agenda-unknown", secret)):
        response = request_token(secured, who, password)
        assert response.status_code == 401 and response.json["error"] == "invalid_client"
    token = request_token(secured, client_id, secret).json["access_token"]
    assert call(secured, token, "GET", "/fhir/Slot").status_code == 200
    secured.test_cli_runner().invoke(args=["oauth", "disable", client_id])
    assert request_token(secured, client_id, secret).json["error"] == "invalid_client"
    # … and the tokens it already holds stop working at once.
    assert "disabled" in refused(call(secured, token, "GET", "/fhir/Slot"), 401, "invalid_token")


def test_requested_scopes_are_narrowed_to_the_allowed_ones(secured: Flask) -> None:
    """Partly allowed → narrowed (the answer's `scope` says what was granted, RFC 6749 §3.3);
    nothing allowed → 400 invalid_scope."""
    client_id, secret = register(secured, "--name", "X", "--scope",
                                 "system/Slot.rs system/Appointment.cruds")
    granted = {
        "system/Slot.read system/Patient.read": "system/Slot.read",
        "system/*.rs": "system/Appointment.rs system/Slot.rs",
        "system/Appointment.write": "system/Appointment.write",
        "system/Slot.cruds": "system/Slot.rs",
    }
    for asked, expected in granted.items():
        response = request_token(secured, client_id, secret, asked)
        assert response.json["scope"] == expected, (asked, response.json)
        claims = jwt.decode(response.json["access_token"], tokens.signing_key(
            secured.extensions["agenda"].settings.oauth_signing_key)).claims
        assert claims["scope"] == expected
    response = request_token(secured, client_id, secret, "system/Patient.read")
    assert response.status_code == 400 and response.json["error"] == "invalid_scope"


def test_smart_configuration_and_jwks_are_public(secured: Flask) -> None:
    config = secured.test_client().get("/fhir/.well-known/smart-configuration")
    assert config.status_code == 200
    assert config.json["token_endpoint"] == "http://localhost/oauth/token"
    assert config.json["grant_types_supported"] == ["client_credentials"]
    assert "client_secret_basic" in config.json["token_endpoint_auth_methods_supported"]
    assert {"system/Slot.rs", "system/*.cruds"} <= set(config.json["scopes_supported"])
    # AuditEvent is read-only: never offered for writing.
    assert "system/AuditEvent.rs" in config.json["scopes_supported"]
    assert "system/AuditEvent.cruds" not in config.json["scopes_supported"]
    assert secured.test_client().get("/oauth/jwks").status_code == 200


# -- bearer tokens on /fhir -----------------------------------------------------------------------

def test_right_scope_reads_and_wrong_scope_is_403(secured: Flask) -> None:
    token = access_token(secured, "--scope", "system/Slot.read")
    response = call(secured, token, "GET", "/fhir/Slot/slot-dupont")
    assert response.status_code == 200 and body(response)["schedule"] == {
        "reference": "Schedule/sch-dupont"}
    assert ids(call(secured, token, "GET", "/fhir/Slot")) == {"slot-dupont", "slot-durand"}
    refused(call(secured, token, "GET", "/fhir/Patient/patient-dupont"), 403,
            "insufficient_scope")
    refused(call(secured, token, "POST", "/fhir/Appointment", new("dupont", -1)), 403,
            "insufficient_scope")


def test_missing_and_malformed_tokens_are_401(secured: Flask) -> None:
    refused(call(secured, None, "GET", "/fhir/Slot"), 401)
    for garbage in ("garbage", "a.b.c", "x" * 2000):
        refused(call(secured, garbage, "GET", "/fhir/Slot"), 401, "invalid_token")
    basic = secured.test_client().get("/fhir/Slot", headers={"Authorization": "Basic eDp5"})
    refused(basic, 401, "invalid_token")


@pytest.mark.parametrize("claims, description", [
    ({"exp": -600}, "expired"),  # exp and nbf: seconds from now
    ({"nbf": 600}, "not valid yet"),
    ({"aud": "https://other.example/fhir"}, "wrong audience"),
    ({"iss": "https://evil.example"}, "wrong issuer"),
    ({"exp": None}, "missing claim exp"),
])
def test_tokens_with_wrong_claims_are_401(secured: Flask, rsa_key: tuple[Path, RSAKey],
                                          claims: Resource, description: str) -> None:
    assert call(secured, sign(rsa_key[1]), "GET", "/fhir/Slot").status_code == 200
    now = int(time.time())
    wrong = {name: now + value if name in {"exp", "nbf"} and value else value
             for name, value in claims.items()}
    challenge = refused(call(secured, sign(rsa_key[1], **wrong), "GET", "/fhir/Slot"), 401,
                        "invalid_token")
    assert description in challenge


def test_tokens_signed_by_another_key_are_401(secured: Flask,
                                              rsa_key: tuple[Path, RSAKey]) -> None:
    other = RSAKey.generate_key(2048)
    forged = sign(other, kid=rsa_key[1].thumbprint())  # our kid, someone else's key
    assert "bad signature" in refused(call(secured, forged, "GET", "/fhir/Slot"), 401)
    assert "unknown signing key" in refused(call(secured, sign(other), "GET", "/fhir/Slot"),
                                            401)
    # A shared-secret algorithm is never accepted, whatever the key.
    hs256 = jwt.encode({"alg": "HS256"}, {"iss": BUILTIN_ISSUER, "aud": TEST_BASE_URL,
                                          "exp": int(time.time()) + 60},
                       OctKey.generate_key(256))
    refused(call(secured, hs256, "GET", "/fhir/Slot"), 401, "invalid_token")


def test_a_client_restricted_to_one_practitioner_sees_only_its_agendas(secured: Flask) -> None:
    token = access_token(secured, "--scope", "system/*.cruds", "--practitioner", DUPONT_RPPS)
    own = call(secured, token, "GET", "/fhir/Appointment/appt-dupont")
    assert own.status_code == 200 and body(own)["id"] == "appt-dupont"
    other = call(secured, token, "GET", "/fhir/Appointment/appt-durand")
    assert other.status_code == 403, body(other)
    assert ids(call(secured, token, "GET", "/fhir/Appointment")) == {"appt-dupont"}
    assert ids(call(secured, token, "GET", "/fhir/Slot")) == {"slot-dupont"}


# -- an external authorisation server -----------------------------------------------------------

def test_external_jwks_tokens_and_key_rotation(agendas: None, engine: Engine, database_url: str,
                                               idp: FakeAuthorisationServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "REFETCH_COOLDOWN_SECONDS", 0)
    first, second = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    idp.jwks = {"keys": [first.as_dict(private=False, kid="k1")]}
    external = production_app(engine, database_url, oauth_jwks_url=f"{idp.url}/jwks",
                              oauth_issuer=EXTERNAL_ISSUER)

    def token(key: ECKey, kid: str, **claims: Any) -> str:
        return sign(key, "ES256", kid, **{"iss": EXTERNAL_ISSUER, "client_id": None,
                                          "sub": "ext-agenda"} | claims)

    response = call(external, token(first, "k1"), "GET", "/fhir/Slot/slot-durand")
    assert response.status_code == 200 and body(response)["id"] == "slot-durand"
    assert call(external, token(first, "k1"), "GET", "/fhir/Slot").status_code == 200
    assert idp.jwks_fetches == 1  # cached
    # An unregistered client is not restricted, but its scopes still apply.
    refused(call(external, token(first, "k1"), "POST", "/fhir/Slot", new("durand", 2)), 403,
            "insufficient_scope")
    refused(call(external, token(first, "k1", iss=BUILTIN_ISSUER), "GET", "/fhir/Slot"), 401)

    idp.jwks = {"keys": [second.as_dict(private=False, kid="k2")]}  # rotation
    assert call(external, token(second, "k2"), "GET", "/fhir/Slot").status_code == 200
    assert idp.jwks_fetches == 2
    assert "unknown signing key" in refused(
        call(external, token(first, "k1"), "GET", "/fhir/Slot"), 401)
    # Tokens come from the external server only: the built-in grant is off.
    client_id, secret = register_external(external)
    assert request_token(external, client_id, secret).json["error"] == "unsupported_grant_type"


def register_external(app: Flask) -> tuple[str, str]:
    result = app.test_cli_runner().invoke(args=["oauth", "register-client", "--name", "X",
                                                "--scope", "system/Slot.rs"])
    assert result.exit_code == 0 and "external authorisation server" in result.output
    fields = dict(line.split(":", 1) for line in result.output.splitlines() if ": " in line)
    return fields["client_id"].strip(), fields["client_secret"].strip()


def test_external_registered_client_gets_its_restrictions(
        agendas: None, engine: Engine, database_url: str,
        idp: FakeAuthorisationServer) -> None:
    key = ECKey.generate_key("P-256")
    idp.jwks = {"keys": [key.as_dict(private=False, kid="k1")]}
    external = production_app(engine, database_url, oauth_jwks_url=f"{idp.url}/jwks",
                              oauth_issuer=EXTERNAL_ISSUER)
    result = external.test_cli_runner().invoke(args=[
        "oauth", "register-client", "--name", "Agenda Durand", "--scope", "system/*.rs",
        "--practitioner", "durand"])
    client_id = result.output.split()[1]
    token = sign(key, "ES256", "k1", iss=EXTERNAL_ISSUER, client_id=client_id,
                 scope="system/*.rs")
    assert ids(call(external, token, "GET", "/fhir/Appointment")) == {"appt-durand"}


def test_external_jwks_unreachable_is_503_and_issuer_is_required(
        agendas: None, engine: Engine, database_url: str,
        idp: FakeAuthorisationServer) -> None:
    idp.down = True
    external = production_app(engine, database_url, oauth_jwks_url=f"{idp.url}/jwks",
                              oauth_issuer=EXTERNAL_ISSUER)
    key = ECKey.generate_key("P-256")
    response = call(external, sign(key, "ES256", iss=EXTERNAL_ISSUER), "GET", "/fhir/Slot")
    assert response.status_code == 503 and body(response)["issue"][0]["code"] == "transient"
    with pytest.raises(ValueError, match="OAUTH_ISSUER"):
        production_app(engine, database_url, oauth_jwks_url=f"{idp.url}/jwks")


def test_introspection(agendas: None, engine: Engine, database_url: str,
                       idp: FakeAuthorisationServer) -> None:
    now = int(time.time())
    active = {"active": True, "client_id": "ext-agenda", "scope": "system/Slot.rs",
              "aud": TEST_BASE_URL, "exp": now + 60}
    idp.introspection = {"good": active, "revoked": {"active": False},
                         "elsewhere": active | {"aud": "https://other.example/fhir"},
                         "stale": active | {"exp": now - 600}}
    external = production_app(engine, database_url,
                              oauth_introspection_url=f"{idp.url}/introspect",
                              oauth_introspection_client_id="fhir-agenda",
                              oauth_introspection_client_secret="s3cret")
    assert ids(call(external, "good", "GET", "/fhir/Slot")) == {"slot-dupont", "slot-durand"}
    refused(call(external, "good", "GET", "/fhir/Patient"), 403, "insufficient_scope")
    basic = "Basic " + base64.b64encode(b"fhir-agenda:s3cret").decode()
    assert idp.introspected[0] == (basic, "good")
    for token, description in (("revoked", "not active"), ("unknown", "not active"),
                               ("elsewhere", "wrong audience"), ("stale", "expired")):
        challenge = refused(call(external, token, "GET", "/fhir/Slot"), 401, "invalid_token")
        assert description in challenge
    idp.down = True
    assert call(external, "good", "GET", "/fhir/Slot").status_code == 503
