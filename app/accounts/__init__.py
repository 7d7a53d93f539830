"""User accounts of our web pages: regulators synchronised from SAS (INT_R02), sessions,
password resets and terms of use. Flask-independent; the pages live in app/web/."""
