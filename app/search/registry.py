"""The search parameters this server supports, per resource type (FHIR R4 definitions).

This registry is the single source of truth: the indexer extracts values with it on write,
the query builder reads it on search, and the CapabilityStatement is generated from it.
Paths are FHIRPath-like dotted paths; `targets` restricts a reference parameter to the listed
resource types (the R4 `where(resolve() is X)` filters).
"""

from __future__ import annotations

from dataclasses import dataclass

SUPPORTED_TYPES: tuple[str, ...] = (
    "Practitioner",
    "PractitionerRole",
    "Location",
    "Organization",
    "HealthcareService",
    "Schedule",
    "Slot",
    "Appointment",
    "Patient",
    # GAP agenda resources (CI-SIS Gestion d'Agendas Partagés: equipment, a patient's
    # relatives), managed by flows 1a/1b/1c like the other agenda resources.
    "Device",
    "RelatedPerson",
    "Subscription",
    "AuditEvent",
)
# Written by the server only: readable and searchable, never created or changed by clients.
READ_ONLY_TYPES: frozenset[str] = frozenset({"AuditEvent"})

SPEC_BASE = "http://hl7.org/fhir/SearchParameter/"
# The CI-SIS GAP guide (Gestion d'Agendas Partagés): its SearchParameters and the
# CapabilityStatements of its roles are canonical URLs below this base.
GAP_BASE = "https://interop.esante.gouv.fr/ig/fhir/gap"
GAP_SEARCH = f"{GAP_BASE}/SearchParameter/"


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str  # token | string | date | reference | uri | special
    paths: tuple[str, ...]
    # Reference parameters: the types it may point at; empty = any type (R4 "Any").
    targets: tuple[str, ...] = ()
    description: str = ""
    # Canonical URL of the SearchParameter this implements; empty = R4's `{Type}-{name}`.
    definition: str = ""
    # Other SearchParameters answered under the same code, e.g. GAP's earliestStart and
    # latestStart (`start` limited to gt/ge, lt/le): a CapabilityStatement may name each
    # code once (cpb-12), so they are told in the documentation.
    also: tuple[str, ...] = ()

    @property
    def index_type(self) -> str:
        """Which index table holds the values (uri values are stored as tokens)."""
        return "token" if self.type == "uri" else self.type


def _p(name: str, type_: str, *paths: str, targets: tuple[str, ...] = (),
       doc: str = "", definition: str = "", also: tuple[str, ...] = ()) -> SearchParam:
    return SearchParam(name=name, type=type_, paths=paths, targets=targets, description=doc,
                       definition=definition, also=also)


def definition_of(resource_type: str, param: SearchParam) -> str:
    """The canonical URL of the SearchParameter a parameter of `resource_type` implements."""
    if param.definition:
        return param.definition
    if param.name.startswith("_"):
        return f"{SPEC_BASE}Resource-{param.name.lstrip('_')}"
    return f"{SPEC_BASE}{resource_type}-{param.name}"


# Parameters every resource type has. `_id` and `_lastUpdated` are answered from the
# `resources` table itself; the others are indexed like any parameter.
COMMON: tuple[SearchParam, ...] = (
    _p("_id", "special", "Resource.id", doc="Logical id of the resource"),
    _p("_lastUpdated", "date", "Resource.meta.lastUpdated", doc="When the resource last changed"),
    _p("_security", "token", "Resource.meta.security", doc="Security labels (SAS slot types)"),
    _p("_tag", "token", "Resource.meta.tag", doc="Tags"),
    _p("_profile", "uri", "Resource.meta.profile", doc="Profiles claimed"),
    _p("_source", "uri", "Resource.meta.source", doc="Where the resource comes from"),
)

SUPPORTED_TYPES_FOR_AUDIT = tuple(t for t in SUPPORTED_TYPES if t != "AuditEvent")
ANY_ACTOR = ("Practitioner", "PractitionerRole", "Location", "HealthcareService", "Patient",
             "Device", "RelatedPerson")

_ADDRESS_PARAMS = (
    ("address", "{t}.address"),
    ("address-city", "{t}.address.city"),
    ("address-postalcode", "{t}.address.postalCode"),
)
# R4 defines these once for people (Patient, Practitioner, RelatedPerson…): `individual-*`.
INDIVIDUAL = f"{SPEC_BASE}individual-"


def _address(resource_type: str, definition_base: str = "") -> tuple[SearchParam, ...]:
    return tuple(_p(name, "string", path.format(t=resource_type),
                    definition=f"{definition_base}{name}" if definition_base else "")
                 for name, path in _ADDRESS_PARAMS)


def _person(resource_type: str) -> tuple[SearchParam, ...]:
    t = resource_type
    return (
        _p("identifier", "token", f"{t}.identifier", doc="An identifier (RPPS, ADELI, INS…)"),
        _p("active", "token", f"{t}.active"),
        _p("name", "string", f"{t}.name", doc="Any part of the name"),
        _p("family", "string", f"{t}.name.family", definition=f"{INDIVIDUAL}family"),
        _p("given", "string", f"{t}.name.given", definition=f"{INDIVIDUAL}given"),
        _p("telecom", "token", f"{t}.telecom", definition=f"{INDIVIDUAL}telecom"),
        _p("gender", "token", f"{t}.gender", definition=f"{INDIVIDUAL}gender"),
        *_address(t, INDIVIDUAL),
    )


PARAMS: dict[str, tuple[SearchParam, ...]] = {
    "AuditEvent": (
        _p("date", "date", "AuditEvent.recorded"),
        _p("agent-name", "string", "AuditEvent.agent.name", doc="Who (client, user)"),
        _p("address", "token", "AuditEvent.agent.network.address"),
        _p("entity", "reference", "AuditEvent.entity.what", targets=SUPPORTED_TYPES_FOR_AUDIT),
        _p("type", "token", "AuditEvent.type"),
        _p("subtype", "token", "AuditEvent.subtype"),
        _p("action", "token", "AuditEvent.action"),
        _p("outcome", "token", "AuditEvent.outcome"),
    ),
    "Subscription": (
        _p("status", "token", "Subscription.status"),
        _p("type", "token", "Subscription.channel.type"),
        _p("url", "uri", "Subscription.channel.endpoint"),
        _p("payload", "token", "Subscription.channel.payload"),
        _p("criteria", "string", "Subscription.criteria"),
        _p("contact", "token", "Subscription.contact"),
    ),
    "Practitioner": _person("Practitioner"),
    "Patient": (
        *_person("Patient"),
        _p("birthdate", "date", "Patient.birthDate", definition=f"{INDIVIDUAL}birthdate"),
        _p("general-practitioner", "reference", "Patient.generalPractitioner",
           targets=("Practitioner", "PractitionerRole", "Organization")),
        _p("organization", "reference", "Patient.managingOrganization",
           targets=("Organization",)),
    ),
    "PractitionerRole": (
        _p("identifier", "token", "PractitionerRole.identifier"),
        _p("active", "token", "PractitionerRole.active"),
        _p("practitioner", "reference", "PractitionerRole.practitioner",
           targets=("Practitioner",)),
        _p("organization", "reference", "PractitionerRole.organization",
           targets=("Organization",)),
        _p("location", "reference", "PractitionerRole.location", targets=("Location",)),
        _p("service", "reference", "PractitionerRole.healthcareService",
           targets=("HealthcareService",)),
        _p("role", "token", "PractitionerRole.code"),
        _p("specialty", "token", "PractitionerRole.specialty"),
        _p("date", "date", "PractitionerRole.period"),
        _p("telecom", "token", "PractitionerRole.telecom"),
    ),
    "Location": (
        _p("identifier", "token", "Location.identifier"),
        _p("name", "string", "Location.name", "Location.alias"),
        _p("status", "token", "Location.status"),
        _p("operational-status", "token", "Location.operationalStatus"),
        _p("type", "token", "Location.type"),
        _p("organization", "reference", "Location.managingOrganization",
           targets=("Organization",)),
        _p("partof", "reference", "Location.partOf", targets=("Location",)),
        *_address("Location"),
    ),
    "Organization": (
        _p("identifier", "token", "Organization.identifier", doc="FINESS, SIRET, RPPS-rang…"),
        _p("active", "token", "Organization.active"),
        _p("name", "string", "Organization.name", "Organization.alias"),
        _p("type", "token", "Organization.type"),
        _p("partof", "reference", "Organization.partOf", targets=("Organization",)),
        *_address("Organization"),
    ),
    "HealthcareService": (
        _p("identifier", "token", "HealthcareService.identifier"),
        _p("active", "token", "HealthcareService.active"),
        _p("name", "string", "HealthcareService.name"),
        _p("organization", "reference", "HealthcareService.providedBy",
           targets=("Organization",)),
        _p("location", "reference", "HealthcareService.location", targets=("Location",)),
        _p("service-category", "token", "HealthcareService.category"),
        _p("service-type", "token", "HealthcareService.type"),
        _p("specialty", "token", "HealthcareService.specialty"),
    ),
    "Schedule": (
        _p("identifier", "token", "Schedule.identifier"),
        _p("active", "token", "Schedule.active"),
        _p("actor", "reference", "Schedule.actor", targets=ANY_ACTOR),
        _p("date", "date", "Schedule.planningHorizon"),
        _p("service-category", "token", "Schedule.serviceCategory"),
        _p("service-type", "token", "Schedule.serviceType"),
        _p("specialty", "token", "Schedule.specialty"),
    ),
    "Slot": (
        _p("identifier", "token", "Slot.identifier"),
        _p("schedule", "reference", "Slot.schedule", targets=("Schedule",)),
        _p("status", "token", "Slot.status"),
        _p("start", "date", "Slot.start", doc="Start of the slot; GAP earliestStart is "
           "start=gt|ge…, latestStart start=lt|le…",
           also=(f"{GAP_SEARCH}GAP-Slot-earliestStart", f"{GAP_SEARCH}GAP-Slot-latestStart")),
        _p("service-category", "token", "Slot.serviceCategory"),
        _p("service-type", "token", "Slot.serviceType"),
        _p("specialty", "token", "Slot.specialty"),
        _p("appointment-type", "token", "Slot.appointmentType"),
        # The SAS guide's SearchParameter cptsslot-sp-servicetype (the R5 Slot.serviceType
        # reference, as an extension): the CPTS offers a slot is shared with.
        _p("service-type-reference", "reference", "Slot.serviceType.extension.valueReference",
           targets=("HealthcareService",), doc="CPTS HealthcareService (SAS CPTS offer)"),
    ),
    "Appointment": (
        _p("identifier", "token", "Appointment.identifier"),
        _p("status", "token", "Appointment.status"),
        _p("date", "date", "Appointment.start"),
        # GAP flow 4b: `start` (earliestStart gt/ge, latestStart lt/le), `created`,
        # `description`, `priority` are the guide's parameters, not R4's.
        _p("start", "date", "Appointment.start", doc="Start of the appointment (GAP "
           "earliestStart: start=gt|ge…, latestStart: start=lt|le…)",
           definition=f"{GAP_SEARCH}GAP-Appointment-earliestStart",
           also=(f"{GAP_SEARCH}GAP-Appointment-latestStart",)),
        _p("created", "date", "Appointment.created", doc="When the appointment was created",
           definition=f"{GAP_SEARCH}GAP-Appointment-created"),
        _p("description", "string", "Appointment.comment", "Appointment.description",
           doc="Comment or title of the appointment",
           definition=f"{GAP_SEARCH}GAP-Appointment-description"),
        # An unsignedInt: indexed as the token code "3" (app/search/extract.py).
        _p("priority", "token", "Appointment.priority", doc="Priority (an integer)",
           definition=f"{GAP_SEARCH}GAP-Appointment-priority"),
        # R4 "Any": a prescription as a DocumentReference or Binary, stored here or not.
        _p("supporting-info", "reference", "Appointment.supportingInformation",
           doc="Attached information (prescription…), any resource type"),
        _p("actor", "reference", "Appointment.participant.actor", targets=ANY_ACTOR),
        _p("practitioner", "reference", "Appointment.participant.actor",
           targets=("Practitioner",)),
        _p("patient", "reference", "Appointment.participant.actor", targets=("Patient",)),
        _p("location", "reference", "Appointment.participant.actor", targets=("Location",)),
        _p("part-status", "token", "Appointment.participant.status"),
        _p("slot", "reference", "Appointment.slot", targets=("Slot",)),
        _p("based-on", "reference", "Appointment.basedOn", targets=("ServiceRequest",)),
        _p("service-category", "token", "Appointment.serviceCategory"),
        _p("service-type", "token", "Appointment.serviceType"),
        _p("specialty", "token", "Appointment.specialty"),
        _p("appointment-type", "token", "Appointment.appointmentType"),
        _p("reason-code", "token", "Appointment.reasonCode"),
    ),
    "Device": (
        _p("identifier", "token", "Device.identifier"),
        _p("type", "token", "Device.type"),
        _p("device-name", "string", "Device.deviceName.name", "Device.type.coding.display",
           "Device.type.text", doc="Name of the equipment (or of its type)"),
        _p("model", "string", "Device.modelNumber"),
        _p("manufacturer", "string", "Device.manufacturer"),
        _p("status", "token", "Device.status"),
        _p("location", "reference", "Device.location", targets=("Location",)),
        _p("organization", "reference", "Device.owner", targets=("Organization",)),
        _p("patient", "reference", "Device.patient", targets=("Patient",)),
    ),
    "RelatedPerson": (
        *_person("RelatedPerson"),
        _p("phone", "token", "RelatedPerson.telecom.where(system='phone')",
           definition=f"{INDIVIDUAL}phone"),
        _p("email", "token", "RelatedPerson.telecom.where(system='email')",
           definition=f"{INDIVIDUAL}email"),
        _p("birthdate", "date", "RelatedPerson.birthDate", definition=f"{INDIVIDUAL}birthdate"),
        _p("patient", "reference", "RelatedPerson.patient", targets=("Patient",)),
        _p("relationship", "token", "RelatedPerson.relationship"),
    ),
}


def params_for(resource_type: str) -> dict[str, SearchParam]:
    """All search parameters of a type, common ones included, by name."""
    found = {p.name: p for p in COMMON}
    found.update({p.name: p for p in PARAMS.get(resource_type, ())})
    return found


def get_param(resource_type: str, name: str) -> SearchParam | None:
    return params_for(resource_type).get(name)


def indexed_params(resource_type: str) -> list[SearchParam]:
    """Parameters whose values the indexer stores (everything but the `resources` columns)."""
    return [p for p in params_for(resource_type).values() if p.name not in {"_id", "_lastUpdated"}]


def reference_params_to(target_type: str) -> list[tuple[str, SearchParam]]:
    """(source type, parameter) pairs whose references may point at `target_type`."""
    return [(t, p) for t in SUPPORTED_TYPES for p in PARAMS.get(t, ())
            if p.type == "reference" and target_type in p.targets]
