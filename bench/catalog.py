"""French reference data for the synthetic dataset: names, places, professions, slot kinds."""

from __future__ import annotations

from typing import NamedTuple


class City(NamedTuple):
    name: str
    postal_code: str
    department: str
    weight: int  # relative number of practices
    latitude: float
    longitude: float


CITIES: tuple[City, ...] = (
    City("Paris", "75011", "75", 60, 48.8589, 2.3795),
    City("Paris", "75015", "75", 50, 48.8412, 2.3003),
    City("Paris", "75018", "75", 45, 48.8925, 2.3444),
    City("Marseille", "13005", "13", 40, 43.2925, 5.3950),
    City("Marseille", "13008", "13", 30, 43.2418, 5.3800),
    City("Lyon", "69003", "69", 30, 45.7597, 4.8500),
    City("Lyon", "69007", "69", 25, 45.7450, 4.8420),
    City("Villeurbanne", "69100", "69", 18, 45.7719, 4.8902),
    City("Toulouse", "31000", "31", 35, 43.6045, 1.4440),
    City("Nice", "06000", "06", 28, 43.7031, 7.2661),
    City("Nantes", "44000", "44", 26, 47.2184, -1.5536),
    City("Montpellier", "34000", "34", 25, 43.6108, 3.8767),
    City("Strasbourg", "67000", "67", 24, 48.5734, 7.7521),
    City("Bordeaux", "33000", "33", 26, 44.8378, -0.5792),
    City("Lille", "59000", "59", 24, 50.6292, 3.0573),
    City("Rennes", "35000", "35", 20, 48.1173, -1.6778),
    City("Reims", "51100", "51", 14, 49.2583, 4.0317),
    City("Saint-Étienne", "42000", "42", 14, 45.4397, 4.3872),
    City("Le Havre", "76600", "76", 12, 49.4944, 0.1079),
    City("Toulon", "83000", "83", 14, 43.1242, 5.9280),
    City("Grenoble", "38000", "38", 16, 45.1885, 5.7245),
    City("Dijon", "21000", "21", 12, 47.3220, 5.0415),
    City("Angers", "49100", "49", 12, 47.4784, -0.5632),
    City("Nîmes", "30000", "30", 11, 43.8367, 4.3601),
    City("Clermont-Ferrand", "63000", "63", 12, 45.7772, 3.0870),
    City("Aix-en-Provence", "13100", "13", 12, 43.5297, 5.4474),
    City("Le Mans", "72000", "72", 10, 48.0061, 0.1996),
    City("Brest", "29200", "29", 10, 48.3904, -4.4861),
    City("Tours", "37000", "37", 11, 47.3941, 0.6848),
    City("Amiens", "80000", "80", 10, 49.8941, 2.2958),
    City("Limoges", "87000", "87", 9, 45.8336, 1.2611),
    City("Annecy", "74000", "74", 9, 45.8992, 6.1294),
    City("Perpignan", "66000", "66", 9, 42.6887, 2.8948),
    City("Metz", "57000", "57", 9, 49.1193, 6.1757),
    City("Besançon", "25000", "25", 9, 47.2378, 6.0241),
    City("Orléans", "45000", "45", 9, 47.9030, 1.9093),
    City("Rouen", "76000", "76", 10, 49.4432, 1.0999),
    City("Caen", "14000", "14", 9, 49.1829, -0.3707),
    City("Mulhouse", "68100", "68", 8, 47.7508, 7.3359),
    City("Nancy", "54000", "54", 9, 48.6921, 6.1844),
    City("Poitiers", "86000", "86", 7, 46.5802, 0.3404),
    City("Pau", "64000", "64", 7, 43.2951, -0.3708),
    City("La Rochelle", "17000", "17", 7, 46.1603, -1.1511),
    City("Ajaccio", "20000", "2A", 4, 41.9192, 8.7386),
    City("Quimper", "29000", "29", 5, 47.9960, -4.1024),
    City("Valence", "26000", "26", 6, 44.9334, 4.8924),
    City("Chambéry", "73000", "73", 6, 45.5646, 5.9178),
    City("Troyes", "10000", "10", 5, 48.2973, 4.0744),
    City("Albi", "81000", "81", 4, 43.9289, 2.1464),
    City("Guéret", "23000", "23", 2, 46.1716, 1.8714),
)

STREETS: tuple[str, ...] = (
    "rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "boulevard Pasteur",
    "place de la Mairie", "rue du Général de Gaulle", "avenue de la Gare", "rue des Écoles",
    "rue Nationale", "rue de l'Église", "chemin des Vignes", "allée des Tilleuls",
    "rue Gambetta", "rue Émile Zola", "avenue Foch", "rue Jules Ferry", "quai des Célestins",
    "rue Saint-Michel", "impasse des Lilas", "rue du Moulin", "avenue de Verdun",
    "rue Pierre Curie", "boulevard Voltaire", "rue de la Paix", "rue Carnot",
)

FAMILY_NAMES: tuple[str, ...] = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
    "Laurent", "Simon", "Michel", "Lefèvre", "Leroy", "Roux", "David", "Bertrand", "Morel",
    "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent",
    "Muller", "Lefebvre", "Faure", "André", "Mercier", "Blanc", "Guérin", "Boyer", "Garnier",
    "Chevalier", "François", "Legrand", "Gauthier", "Garcia", "Perrin", "Robin", "Clément",
    "Morin", "Nicolas", "Henry", "Roussel", "Mathieu", "Gautier", "Masson", "Marchand",
    "Duval", "Denis", "Dumont", "Marie", "Lemaire", "Noël", "Meyer", "Dufour", "Meunier",
    "Brun", "Blanchard", "Giraud", "Joly", "Rivière", "Lucas", "Brunet", "Gaillard", "Barbier",
    "Arnaud", "Martinez", "Gérard", "Roche", "Renard", "Schmitt", "Roy", "Leroux", "Colin",
    "Vidal", "Caron", "Picard", "Roger", "Fabre", "Aubert", "Lemoine", "Renaud", "Dumas",
    "Lacroix", "Olivier", "Philippe", "Bourgeois", "Pierre", "Benoît", "Rey", "Leclerc",
    "Payet", "Rolland", "Leclercq", "Guillaume", "Lecomte", "N'Diaye", "Nguyen", "Haddad",
)

GIVEN_FEMALE: tuple[str, ...] = (
    "Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Sophie", "Christine", "Camille",
    "Julie", "Céline", "Aurélie", "Émilie", "Claire", "Hélène", "Élise", "Léa", "Chloé",
    "Manon", "Inès", "Anaïs", "Laure", "Agnès", "Béatrice", "Maëlle", "Zoé", "Fatima",
)

GIVEN_MALE: tuple[str, ...] = (
    "Jean", "Philippe", "Michel", "Alain", "Patrick", "Nicolas", "Christophe", "Pierre",
    "Laurent", "Julien", "Thomas", "Antoine", "Mathieu", "Sébastien", "François", "Éric",
    "Hugo", "Lucas", "Théo", "Karim", "Benoît", "Jérôme", "Guillaume", "Loïc", "Rémi", "Yann",
)

G15_SYSTEM = ("https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/"
              "TRE-G15-ProfessionSante")
ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"


class Profession(NamedTuple):
    key: str
    g15_code: str
    g15_display: str
    weight: int  # share of the practitioners, in percent
    title: str | None  # name prefix
    rpps_percent: int  # the others have an ADELI number
    slot_minutes: tuple[int, ...]
    profile: str  # slot kind mix, see SLOT_MIXES
    service_types: tuple[str, ...]  # Schedule.serviceType (ActCode)


PROFESSIONS: tuple[Profession, ...] = (
    Profession("gp", "10", "Médecin", 45, "Dr", 100, (15, 20), "gp", ("AMB", "VR")),
    Profession("specialist", "10", "Médecin", 20, "Dr", 100, (20, 30), "specialist", ("AMB",)),
    Profession("nurse", "60", "Infirmier", 15, None, 50, (15,), "nurse", ("AMB", "HH")),
    Profession("physio", "70", "Masseur-kinésithérapeute", 10, None, 50, (30,), "nurse",
               ("AMB", "HH")),
    Profession("dentist", "40", "Chirurgien-dentiste", 5, "Dr", 100, (30,), "specialist",
               ("AMB",)),
    Profession("midwife", "50", "Sage-femme", 5, None, 100, (30,), "specialist", ("AMB", "VR")),
)

# Slot.specialty per profession: (R38 code or None, display or free text). Only codes whose
# label we are sure of carry a display; uncoded specialties travel as text (SAS accepts both).
SPECIALTIES: dict[str, tuple[tuple[str | None, str | None], ...]] = {
    "gp": (("SM54", "Médecine générale"),),
    "specialist": (("SM04", None), ("SM15", None), ("SM38", None), ("SM40", None),
                   ("SM41", None), ("SM42", None)),
    "nurse": ((None, "Soins infirmiers"),),
    "physio": ((None, "Kinésithérapie"),),
    "dentist": ((None, "Chirurgie dentaire"),),
    "midwife": ((None, "Maïeutique"),),
}

# Share of the slot variants (names of app/demo's slot plan kinds) per profile, in percent.
# "unavailable" is a busy-unavailable period with no visibility label.
SLOT_MIXES: dict[str, dict[str, int]] = {
    "gp": {"public": 26, "public-pro": 14, "snp": 12, "office-or-video": 8,
           "teleconsultation": 5, "walkin": 4, "home-visit": 3, "snp-cpts": 5,
           "public-cpts": 3, "patient-reserved": 17, "unavailable": 3},
    "specialist": {"public": 30, "public-pro": 15, "pro": 20, "pro-snp": 10,
                   "patient-reserved": 22, "unavailable": 3},
    "nurse": {"nurse-office": 35, "nurse-home": 30, "nurse-walkin": 15,
              "patient-reserved": 17, "unavailable": 3},
}

# Slots per working day of one practitioner (all places together), with weights.
DAILY_SLOTS: tuple[tuple[int, int], ...] = ((2, 22), (4, 30), (6, 25), (10, 16), (16, 7))

# Share of busy slots by how far ahead the day is (near days are fuller).
BUSY_PERCENT_BY_DAYS_AHEAD: tuple[tuple[int, int], ...] = ((3, 65), (7, 50), (10_000, 30))

# How many practice places (PractitionerRole + Schedule) a practitioner has.
PLACES: tuple[tuple[int, int], ...] = ((1, 55), (2, 35), (3, 10))
# How many practitioners share a cabinet (one Organization + one Location).
CABINET_SIZES: tuple[tuple[int, int], ...] = ((1, 40), (2, 20), (3, 15), (4, 10), (5, 8),
                                              (6, 7))
