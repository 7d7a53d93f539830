"""`fhir-agenda sas-selftest`: the SAS interface checks against a deployment, in the order
a vendor would want them read (transport, metadata, the searches and their rules, the
booking link, the regulator accounts). Each check is one Result (app/ops/selftest/report.py).
"""

from __future__ import annotations

import re
import ssl
import uuid
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from app.ops.selftest import bundle_rules, searches
from app.ops.selftest.probe import Answer, Target, call, handshake
from app.ops.selftest.report import Result, Status, Text

SAS_TECHNICAL_SYSTEM = "urn:oid:1.2.250.1.213.3.6"
TYPE_SYSTEM = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
REGULATOR_PROFILE = ("https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
                     "FrPractitionerRegul")
CPTS_BUNDLE = ("https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
               "sas-cpts-bundle-aggregator")
SOS_BUNDLE = ("https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
              "sas-sos-bundle-aggregator")
NATIONAL_ID = re.compile(r"^8\d{11}$|^0[0-9A-Za-z]{9}$")
OPENID = "/protocol/openid-connect/"
CERTIFICATE_WARNING_DAYS = 30
# The booking link is opened as a browser would (no FHIR headers).
HTML = {"Accept": "text/html", "Content-Type": None}


@dataclass(frozen=True)
class Options:
    target: Target
    rpps: tuple[str, ...] = ()
    cpts: tuple[str, ...] = ()
    sos: tuple[str, ...] = ()
    max_seconds: float = 1.0
    allow_http: bool = False
    regulator: bool = True


def _pass(rule: str, fr: str, en: str) -> Result:
    return Result(rule, Status.PASS, Text(fr, en))


def _fail(rule: str, fr: str, en: str) -> Result:
    return Result(rule, Status.FAIL, Text(fr, en))


def _skip(rule: str, fr: str, en: str) -> Result:
    return Result(rule, Status.SKIP, Text(fr, en))


def _warn(rule: str, fr: str, en: str) -> Result:
    return Result(rule, Status.WARN, Text(fr, en))


def run(options: Options) -> list[Result]:
    return list(_checks(options))


def _checks(options: Options) -> Iterator[Result]:
    target = options.target
    yield from _transport(options)
    yield _metadata(target)
    identifiers, found = _identifiers(options)
    yield found
    if not identifiers:
        for rule in ("ps-search", "ps-multi", "rule-25", "rule-72h", "booking-link",
                     "sso-redirect"):
            yield _skip(rule, "aucun professionnel à interroger", "no practitioner to search")
    else:
        bundle = yield from _ps_search(options, identifiers[:1])
        yield _multi(target, identifiers)
        yield _rule(target, "rule-25", searches.ps_search(
            [identifiers[0], *searches.unknown_identifiers(25)]).url,
            "26 identifiants", "26 identifiers")
        yield _rule(target, "rule-72h", searches.ps_search(identifiers[:1], hours=73).url,
                    "une fenêtre de 73 h", "a 73 h window")
        yield from _booking(target, bundle)
    yield from _offer(target, "cpts-search", options.cpts, searches.cpts_search, CPTS_BUNDLE,
                      "--cpts")
    yield from _offer(target, "sos-search", options.sos, searches.sos_search, SOS_BUNDLE,
                      "--sos")
    if options.regulator:
        yield from _regulator(target)
    else:
        for rule in ("regulator-create", "regulator-duplicate", "regulator-invalid",
                     "regulator-update", "regulator-deactivate"):
            yield _skip(rule, "désactivé (--no-regulator)", "turned off (--no-regulator)")


# -- transport ---------------------------------------------------------------------------------

def _transport(options: Options) -> Iterator[Result]:
    target = options.target
    if urlsplit(target.base).scheme != "https":
        text = ("le SAS n'appelle que des adresses https", "SAS only calls https addresses")
        yield (_warn if options.allow_http else _fail)(
            "transport-https", f"{target.base} : {text[0]}"
            + (" (accepté : --allow-http)" if options.allow_http else ""),
            f"{target.base}: {text[1]}" + (" (accepted: --allow-http)"
                                           if options.allow_http else ""))
        for rule in ("tls-versions", "tls-certificate", "mtls-required"):
            yield _skip(rule, "adresse http", "http address")
        return
    yield _pass("transport-https", target.base, target.base)
    yield _tls_versions(target)
    yield _certificate(target)
    yield _mtls(target)


def _tls_versions(target: Target) -> Result:
    accepted, refused, untestable = [], [], []
    for name, version in (("TLS 1.0", ssl.TLSVersion.TLSv1), ("TLS 1.1", ssl.TLSVersion.TLSv1_1),
                          ("TLS 1.2", ssl.TLSVersion.TLSv1_2),
                          ("TLS 1.3", ssl.TLSVersion.TLSv1_3)):
        outcome = handshake(target, version, verify=False)
        if outcome.ok:
            accepted.append(name)
        elif outcome.error and "NO_PROTOCOLS_AVAILABLE" in outcome.error.upper():
            untestable.append(name)  # this machine's OpenSSL cannot even offer it
        else:
            refused.append(name)
    summary = (f"acceptées : {', '.join(accepted) or 'aucune'} ; refusées : "
               f"{', '.join(refused) or 'aucune'}",
               f"accepted: {', '.join(accepted) or 'none'}; refused: "
               f"{', '.join(refused) or 'none'}")
    old = [name for name in accepted if name in ("TLS 1.0", "TLS 1.1")]
    if old or not {"TLS 1.2", "TLS 1.3"} & set(accepted):
        return _fail("tls-versions", summary[0], summary[1])
    if untestable:
        return _warn("tls-versions", f"{summary[0]} ; non testables d'ici : "
                     f"{', '.join(untestable)}", f"{summary[1]}; untestable from here: "
                     f"{', '.join(untestable)}")
    return _pass("tls-versions", *summary)


def _certificate(target: Target) -> Result:
    outcome = handshake(target)
    if not outcome.ok:
        return _fail("tls-certificate", f"certificat non vérifiable : {outcome.error}",
                     f"certificate not verifiable: {outcome.error}")
    if outcome.not_after is None:
        return _pass("tls-certificate", "chaîne et nom vérifiés", "chain and name verified")
    days = (outcome.not_after - datetime.now(UTC)).days
    text = (f"chaîne et nom vérifiés ({outcome.version}), expire dans {days} jours",
            f"chain and name verified ({outcome.version}), expires in {days} days")
    return (_warn if days < CERTIFICATE_WARNING_DAYS else _pass)("tls-certificate", *text)


def _mtls(target: Target) -> Result:
    if not target.cert:
        return _skip("mtls-required", "sans --cert, pas de recherche SAS certifiée à comparer",
                     "without --cert, no certified SAS search to compare with")
    answer = call(target, "GET", searches.ps_search([searches.unknown_identifiers(1)[0]]).url,
                  with_cert=False)
    if answer.status is None or 400 <= answer.status < 500:
        how = answer.describe()
        return _pass("mtls-required", f"refusée sans certificat ({how})",
                     f"refused without a certificate ({how})")
    return _fail("mtls-required", f"{answer.describe()} sans certificat client : attendu 4xx "
                 "ou une alerte TLS", f"{answer.describe()} without a client certificate: "
                 "expected 4xx or a TLS alert")


# -- metadata and searches ---------------------------------------------------------------------

def _metadata(target: Target) -> Result:
    answer = call(target, "GET", "metadata")
    document = answer.document if isinstance(answer.document, dict) else {}
    if answer.status != 200 or document.get("resourceType") != "CapabilityStatement":
        return _fail("metadata", f"{answer.describe()}, pas de CapabilityStatement",
                     f"{answer.describe()}, no CapabilityStatement")
    version = document.get("fhirVersion")
    if not str(version).startswith("4.0"):
        return _fail("metadata", f"fhirVersion {version!r}, attendu 4.0.1",
                     f"fhirVersion {version!r}, expected 4.0.1")
    return _pass("metadata", f"CapabilityStatement FHIR {version}",
                 f"CapabilityStatement FHIR {version}")


def _identifiers(options: Options) -> tuple[list[str], Result]:
    """The practitioners given, or found: those of the directory with free slots now."""
    if options.rpps:
        return list(options.rpps), _pass(
            "ps-identifiers", f"donnés : {', '.join(options.rpps)}",
            f"given: {', '.join(options.rpps)}")
    target = options.target
    listing = call(target, "GET", f"Practitioner?identifier={searches.IDNPS_SYSTEM}%7C"
                                  "&_count=200")
    if listing.status != 200 or not isinstance(listing.document, dict):
        return [], _fail("ps-identifiers", f"recherche des professionnels : "
                         f"{listing.describe()} ; donnez --rpps",
                         f"practitioner search: {listing.describe()}; give --rpps")
    candidates = [v for v in searches.national_ids(listing.document) if NATIONAL_ID.match(v)]
    with_slots: list[str] = []
    for start in range(0, len(candidates), 25):
        answer = call(target, "GET", searches.ps_search(candidates[start:start + 25]).url)
        if isinstance(answer.document, dict):
            with_slots += [v for v in searches.national_ids(answer.document)
                           if v in candidates]
        if len(with_slots) >= 2:
            break
    if not with_slots:
        return [], _fail("ps-identifiers", f"aucun des {len(candidates)} professionnels n'a de "
                         "créneau libre d'ici J+2 ; donnez --rpps",
                         f"none of the {len(candidates)} practitioners has a free slot "
                         "until J+2; give --rpps")
    return with_slots, _pass("ps-identifiers", f"trouvés avec des créneaux libres : "
                             f"{', '.join(with_slots[:2])}", "found with free slots: "
                             f"{', '.join(with_slots[:2])}")


def _ps_search(options: Options, identifiers: Sequence[str]
               ) -> Generator[Result, None, dict[str, Any] | None]:
    """The kit's searches on one practitioner; returns the Bundle (or None)."""
    target = options.target
    search = searches.ps_search(identifiers)
    answer = call(target, "GET", search.url)
    bundle = answer.document if isinstance(answer.document, dict) else None
    if answer.status != 200 or bundle is None or bundle.get("resourceType") != "Bundle":
        yield _fail("ps-search", f"{answer.describe()} : attendu 200 et un Bundle\n"
                    f"{target.url(search.url)}", f"{answer.describe()}: expected 200 and "
                    f"a Bundle\n{target.url(search.url)}")
        for rule in ("ps-timing", "ps-content-type", *(r for r, _ in bundle_rules.BUNDLE_RULES)):
            yield _skip(rule, "pas de Bundle", "no Bundle")
        return None
    slots = bundle_rules.resources(bundle, "Slot")
    if not slots:
        yield _fail("ps-search", f"Bundle vide pour {identifiers[0]} : le kit demande au moins "
                    "un créneau libre d'ici J+2", f"empty Bundle for {identifiers[0]}: the kit "
                    "needs at least one free slot until J+2")
    else:
        yield _pass("ps-search", f"{len(slots)} créneaux pour {identifiers[0]}",
                    f"{len(slots)} slots for {identifiers[0]}")
    timing = (f"{answer.elapsed * 1000:.0f} ms (limite {options.max_seconds:g} s, connexion "
              "et TLS compris)", f"{answer.elapsed * 1000:.0f} ms (limit "
              f"{options.max_seconds:g} s, connection and TLS included)")
    yield (_pass if answer.elapsed <= options.max_seconds else _fail)("ps-timing", *timing)
    media = answer.content_type
    yield (_pass if media == "application/fhir+json" else _warn)(
        "ps-content-type", media or "—", media or "—")
    search = bundle_rules.Search(target.url(search.url), search.identifiers, search.now,
                                 search.last_day)
    for _, check in bundle_rules.BUNDLE_RULES:
        yield check(bundle, search)
    return bundle


def _multi(target: Target, identifiers: Sequence[str]) -> Result:
    if len(identifiers) < 2:
        return _skip("ps-multi", "un seul professionnel avec des créneaux",
                     "only one practitioner with slots")
    pair = list(identifiers[:2])
    answer = call(target, "GET", searches.ps_search(pair).url)
    found = (searches.national_ids(answer.document) if isinstance(answer.document, dict)
             else [])
    if answer.status == 200 and sorted(set(found) & set(pair)) == sorted(pair) and len(
            bundle_rules.resources(answer.document, "Practitioner")) == 2:
        return _pass("ps-multi", f"2 professionnels en une recherche ({', '.join(pair)})",
                     f"2 practitioners in one search ({', '.join(pair)})")
    return _fail("ps-multi", f"{answer.describe()}, professionnels trouvés : {found}",
                 f"{answer.describe()}, practitioners found: {found}")


def _rule(target: Target, rule: str, url: str, fr: str, en: str) -> Result:
    answer = call(target, "GET", url)
    if answer.status is not None and 400 <= answer.status < 500 and answer.is_outcome():
        return _pass(rule, f"{fr} : {answer.describe()} avec un OperationOutcome",
                     f"{en}: {answer.describe()} with an OperationOutcome")
    return _fail(rule, f"{fr} : {answer.describe()}, attendu 400 et un OperationOutcome",
                 f"{en}: {answer.describe()}, expected 400 and an OperationOutcome")


def _booking(target: Target, bundle: dict[str, Any] | None) -> Iterator[Result]:
    links = [str(s.get("comment") or "") for s in bundle_rules.resources(bundle or {}, "Slot")]
    link = next((item for item in links if item), "")
    if not link:
        yield _fail("booking-link", "aucun créneau ne porte de lien (Slot.comment)",
                    "no slot carries a link (Slot.comment)")
        yield _skip("sso-redirect", "pas de lien", "no link")
        return
    if urlsplit(link).scheme not in ("http", "https") or "?" not in link:
        yield _fail("booking-link", f"{link} : attendu une URL absolue avec une requête "
                    "(le SAS y ajoute &origin=…)", f"{link}: expected an absolute URL with a "
                    "query (SAS appends &origin=…)")
        yield _skip("sso-redirect", "lien inutilisable", "unusable link")
        return
    page = call(target, "GET", link, with_cert=False, follow=True,
                headers=HTML)
    if page.status is not None and page.status < 500 and page.content_type == "text/html":
        yield _pass("booking-link", f"{link} : page HTML ({page.describe()})",
                    f"{link}: HTML page ({page.describe()})")
    else:
        yield _fail("booking-link", f"{link} : {page.describe()} {page.content_type}, attendu "
                    "une page HTML", f"{link}: {page.describe()} {page.content_type}, expected "
                    "an HTML page")
    sso = call(target, "GET", f"{link}&origin=sas-preprod", with_cert=False, follow=True,
               headers=HTML)
    hops = [location for _, location in sso.hops] + [sso.url]
    if any(OPENID in hop for hop in hops):
        yield _pass("sso-redirect", f"redirigé vers {next(h for h in hops if OPENID in h)}",
                    f"redirected to {next(h for h in hops if OPENID in h)}")
    else:
        yield _warn("sso-redirect", f"pas de redirection OpenID Connect en 3 sauts "
                    f"({sso.describe()}) : le kit attend la page de connexion Pro Santé "
                    "Connect du SAS", f"no OpenID Connect redirect within 3 hops "
                    f"({sso.describe()}): the kit expects SAS's Pro Santé Connect login")


def _offer(target: Target, rule: str, identifiers: Sequence[str], build: Any,
           profile: str, option: str) -> Iterator[Result]:
    if not identifiers:
        yield _skip(rule, f"aucun identifiant donné ({option})", f"no identifier given "
                    f"({option})")
        return
    answer = call(target, "GET", build(identifiers))
    bundle = answer.document if isinstance(answer.document, dict) else {}
    profiles = bundle.get("meta", {}).get("profile")
    if answer.status != 200 or bundle.get("resourceType") != "Bundle" or not bundle.get(
            "entry") or profiles != [profile]:
        yield _fail(rule, f"{answer.describe()}, profil {profiles}, attendu un Bundle non vide "
                    f"de profil {profile}", f"{answer.describe()}, profile {profiles}, expected "
                    f"a non-empty Bundle of profile {profile}")
        return
    problems = (bundle_rules.cpts_problems(bundle) if rule == "cpts-search"
                else bundle_rules.sos_problems(bundle, tuple(identifiers)))
    if problems:
        yield Result(rule, Status.FAIL, Text("\n".join(p.fr for p in problems[:8]),
                                             "\n".join(p.en for p in problems[:8])))
        return
    yield _pass(rule, f"{len(bundle['entry'])} entrées, profils et liens conformes",
                f"{len(bundle['entry'])} entries, profiles and links conformant")


# -- regulator accounts ------------------------------------------------------------------------

def regulator_body(value: str, email: str, *, active: bool = True,
                   name: bool = True) -> dict[str, Any]:
    """A FrPractitionerRegul as SAS sends it, on a SAS technical id."""
    body: dict[str, Any] = {
        "resourceType": "Practitioner", "id": str(uuid.uuid4()),
        "meta": {"source": SAS_TECHNICAL_SYSTEM, "profile": [REGULATOR_PROFILE]},
        "identifier": [{"type": {"coding": [{"system": TYPE_SYSTEM, "code": "INTRN"}]},
                        "system": SAS_TECHNICAL_SYSTEM, "value": value}],
        "active": active, "telecom": [{"system": "email", "value": email}]}
    if name:
        body["name"] = [{"family": "Autotest", "given": ["SAS"]}]
    return body


def _regulator(target: Target) -> Iterator[Result]:
    """POST, duplicate, invalid, conditional PUT, deactivation, on a throwaway identifier;
    the account is deactivated whatever happens once it exists."""
    value = str(uuid.uuid4())
    email = f"autotest.{value[:8]}@sas-selftest.invalid"
    where = f"Practitioner?identifier={SAS_TECHNICAL_SYSTEM}%7C{value}"
    created = call(target, "POST", "Practitioner", body=regulator_body(value, email))
    if created.status != 201:
        yield _fail("regulator-create", f"POST Practitioner : {created.describe()}, attendu 201",
                    f"POST Practitioner: {created.describe()}, expected 201")
        for rule in ("regulator-duplicate", "regulator-invalid", "regulator-update",
                     "regulator-deactivate"):
            yield _skip(rule, "pas de compte créé", "no account created")
        return
    deactivated = False
    try:
        yield _pass("regulator-create", f"201, identifiant technique {value}",
                    f"201, technical id {value}")
        again = call(target, "POST", "Practitioner", body=regulator_body(value, email))
        yield _refused("regulator-duplicate", again, "le même compte posté deux fois",
                       "the same account posted twice")
        invalid = call(target, "POST", "Practitioner", body=regulator_body(
            str(uuid.uuid4()), f"x.{email}", name=False))
        yield _refused("regulator-invalid", invalid, "un compte sans nom",
                       "an account without a name")
        changed = call(target, "PUT", where, body=regulator_body(value, f"new.{email}"),
                       headers={"Accept": "application/fhir+json"})
        yield (_pass if changed.status == 200 else _fail)(
            "regulator-update", f"PUT conditionnel (nouvel email) : {changed.describe()}"
            + ("" if changed.status == 200 else ", attendu 200"),
            f"conditional PUT (new email): {changed.describe()}"
            + ("" if changed.status == 200 else ", expected 200"))
        closed = _deactivate(target, where, value, email)
        deactivated = closed.status is not None and 200 <= closed.status < 300
        yield (_pass if deactivated else _fail)(
            "regulator-deactivate", f"active=false : {closed.describe()}",
            f"active=false: {closed.describe()}")
    finally:
        if not deactivated:
            _deactivate(target, where, value, email)


def _deactivate(target: Target, where: str, value: str, email: str) -> Answer:
    return call(target, "PUT", where, body=regulator_body(value, f"new.{email}", active=False),
                headers={"Accept": "application/fhir+json"})


def _refused(rule: str, answer: Answer, fr: str, en: str) -> Result:
    if answer.status is not None and 400 <= answer.status < 500 and answer.is_outcome():
        return _pass(rule, f"{fr} : {answer.describe()}", f"{en}: {answer.describe()}")
    return _fail(rule, f"{fr} : {answer.describe()}, attendu 4xx et un OperationOutcome",
                 f"{en}: {answer.describe()}, expected 4xx and an OperationOutcome")
