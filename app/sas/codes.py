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

# The CPTS offer (slots shared with a Communauté Professionnelle Territoriale de Santé) and
# the SOS Médecins offer (fixed consultation places of an association).
IG_PROFILE_BASE = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
CPTS_BUNDLE_PROFILE = IG_PROFILE_BASE + "sas-cpts-bundle-aggregator"
CPTS_SLOT_PROFILE = IG_PROFILE_BASE + "sas-cpts-slot-aggregator"
CPTS_SERVICE_PROFILE = IG_PROFILE_BASE + "sas-cpts-healthcareservice-aggregator"
CPTS_ORGANIZATION_PROFILE = IG_PROFILE_BASE + "sas-cpts-organization-aggregator"
SOS_BUNDLE_PROFILE = IG_PROFILE_BASE + "sas-sos-bundle-aggregator"
SOS_SLOT_PROFILE = IG_PROFILE_BASE + "sas-sos-slot-aggregator"
SOS_SCHEDULE_PROFILE = IG_PROFILE_BASE + "sas-sos-schedule-aggregator"
SOS_LOCATION_PROFILE = IG_PROFILE_BASE + "sas-sos-location-aggregator"
SOS_ORGANIZATION_PROFILE = IG_PROFILE_BASE + "sas-sos-organization-aggregator"
SOS_APPOINTMENT_PROFILE = IG_PROFILE_BASE + "sas-sos-appointment"

CPTS_LABEL = "CPTS"
# An SOS Médecins slot is public or SAS-dedicated; other labels are not part of that offer.
SOS_SLOT_TYPES = frozenset({"PUBLIC", "SNP"})
# The R5 Slot.serviceType reference, backported as an extension on a serviceType concept.
SERVICE_TYPE_EXTENSION = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
CATEGORY_SYSTEM = ("https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/"
                   "TRE-R66-CategorieEtablissement")
CPTS_CATEGORY = "604"
LOCATION_ID_TYPES = "http://interopsante.org/fhir/CodeSystem/fr-location-identifier-type"
