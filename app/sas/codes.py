"""Code systems, codes and profile URLs of the SAS implementation guide."""

from __future__ import annotations

SLOT_TYPE_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
# Visibility types SAS may see; anything else (e.g. patient-reserved) never leaves the server.
SAS_SLOT_TYPES = frozenset({"PUBLIC", "PRO", "SNP", "CPTS"})
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONSULTATION_TYPES = frozenset({"AMB", "HH", "VR"})
APPOINTMENT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0276"
APPOINTMENT_REASONS = frozenset({"ROUTINE", "WALKIN"})
SPECIALTY_SYSTEM = ("https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/"
                    "TRE-R38-SpecialiteOrdinale")

PROFILE_BASE = "http://sas.fr/fhir/StructureDefinition/"
BUNDLE_PROFILE = PROFILE_BASE + "BundleAgregateur"
SLOT_PROFILE = PROFILE_BASE + "FrSlotAgregateur"
SCHEDULE_PROFILE = PROFILE_BASE + "FrScheduleAgregateur"
PRACTITIONER_PROFILE = PROFILE_BASE + "FrPractitionerAgregateur"
ROLE_PROFILE = PROFILE_BASE + "FrPractitionerRoleExerciceAgregateur"
LOCATION_PROFILE = PROFILE_BASE + "FrLocationAgregateur"
