"""The conformity report of `fhir-agenda sas-selftest`: one line per rule, in French or
English, and the exit status (non-zero when any rule fails)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"  # what the ANS kit only warns about, or a recommendation
    SKIP = "skip"  # not tested (say why)


@dataclass(frozen=True)
class Text:
    fr: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.fr if lang == "fr" else self.en


@dataclass(frozen=True)
class Result:
    rule: str
    status: Status
    detail: Text


# Each rule's title; the rule ids are stable (scripts and tests read them).
RULES: dict[str, Text] = {
    "transport-https": Text("Adresse en https", "https base URL"),
    "tls-versions": Text("Versions TLS (1.2 ou 1.3 seulement)", "TLS versions (1.2 or 1.3 only)"),
    "tls-certificate": Text("Certificat du serveur", "Server certificate"),
    "mtls-required": Text("Recherche SAS refusée sans certificat client",
                          "SAS search refused without a client certificate"),
    "metadata": Text("CapabilityStatement (GET /metadata)", "CapabilityStatement (GET /metadata)"),
    "ps-identifiers": Text("Professionnels à interroger", "Practitioners to search"),
    "ps-search": Text("Recherche de créneaux SAS (offre individuelle)",
                      "SAS slot search (individual offer)"),
    "ps-timing": Text("Temps de réponse de la recherche", "Search response time"),
    "ps-content-type": Text("Type de contenu application/fhir+json",
                            "Content type application/fhir+json"),
    "ps-profiles": Text("Profils SAS (un meta.profile canonique par ressource)",
                        "SAS profiles (one canonical meta.profile per resource)"),
    "ps-slots": Text("Créneaux (libres, dates, types, commentaire)",
                     "Slots (free, dates, types, comment)"),
    "ps-references": Text("Références entre ressources et lieu contenu",
                          "References between resources and contained place"),
    "ps-practitioner": Text("Professionnel (IDNPS en premier, nom, prénom)",
                            "Practitioner (IDNPS first, names)"),
    "ps-structure": Text("Structure (IDNST) et téléphone", "Structure (IDNST) and telephone"),
    "ps-total": Text("Bundle.total = nombre de créneaux", "Bundle.total = number of slots"),
    "ps-self-link": Text("Lien self identique à la requête", "Self link equal to the request"),
    "ps-example-systems": Text("Aucun système d'identifiant d'exemple",
                               "No example identifier system"),
    "ps-multi": Text("Recherche de plusieurs professionnels", "Search of several practitioners"),
    "rule-25": Text("Règle des 25 identifiants", "25-identifier rule"),
    "rule-72h": Text("Règle des 72 heures", "72-hour rule"),
    "booking-link": Text("Lien de prise de rendez-vous", "Booking link"),
    "sso-redirect": Text("Redirection vers Pro Santé Connect (origin=sas)",
                         "Redirect to Pro Santé Connect (origin=sas)"),
    "regulator-create": Text("Compte régulateur : création", "Regulator account: creation"),
    "regulator-duplicate": Text("Compte régulateur : doublon refusé",
                                "Regulator account: duplicate refused"),
    "regulator-invalid": Text("Compte régulateur : profil incomplet refusé",
                              "Regulator account: incomplete profile refused"),
    "regulator-update": Text("Compte régulateur : modification", "Regulator account: update"),
    "regulator-deactivate": Text("Compte régulateur : désactivation",
                                 "Regulator account: deactivation"),
    "cpts-search": Text("Recherche de créneaux SAS (offre CPTS)", "SAS slot search (CPTS offer)"),
    "sos-search": Text("Recherche de créneaux SAS (offre SOS Médecins)",
                       "SAS slot search (SOS Médecins offer)"),
}
LABELS = {
    "fr": {Status.PASS: "RÉUSSI", Status.FAIL: "ÉCHEC", Status.WARN: "ATTENTION",
           Status.SKIP: "NON TESTÉ"},
    "en": {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.WARN: "WARN",
           Status.SKIP: "SKIP"},
}


def failed(results: Iterable[Result]) -> bool:
    return any(result.status is Status.FAIL for result in results)


def render(results: list[Result], base: str, lang: str) -> str:
    labels = LABELS[lang]
    width = max(len(label) for label in labels.values())
    heading = Text(f"Autotest des interfaces SAS — {base}", f"SAS interface self-test — {base}")
    lines = [heading(lang), ""]
    for result in results:
        lines.append(f"[{labels[result.status]:<{width}}] {result.rule:<21} "
                     f"{RULES[result.rule](lang)}")
        for detail in result.detail(lang).splitlines():
            lines.append(f"{'':{width + 3}} {'':<21} {detail}")
    counts = {status: sum(r.status is status for r in results) for status in Status}
    summary = Text(
        f"Bilan : {counts[Status.PASS]} réussis, {counts[Status.FAIL]} échecs, "
        f"{counts[Status.WARN]} avertissements, {counts[Status.SKIP]} non testés — "
        + ("NON CONFORME" if failed(results) else "conforme sur les points testés"),
        f"Summary: {counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, "
        f"{counts[Status.WARN]} warnings, {counts[Status.SKIP]} skipped — "
        + ("NOT CONFORMANT" if failed(results) else "conformant on the points tested"))
    return "\n".join([*lines, "", summary(lang)])


def as_json(results: list[Result], base: str, lang: str) -> str:
    return json.dumps({"base": base, "failed": failed(results), "results": [
        {"rule": r.rule, "status": str(r.status), "title": RULES[r.rule](lang),
         "detail": r.detail(lang), "detail_fr": r.detail.fr, "detail_en": r.detail.en}
        for r in results]}, ensure_ascii=False, indent=2)

