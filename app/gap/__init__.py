"""GAP (CI-SIS Gestion d'Agendas Partagés) flows."""
